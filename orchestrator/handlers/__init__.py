"""What date-range runs execute for their window. Each type registers in handlers.registry."""
