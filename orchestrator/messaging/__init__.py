"""RabbitMQ: topology, message schemas, publishing with confirms, dead letters."""
