"""What sinks and handlers share: the resources a process hands every plugin (`resources`),
the connections to destinations among them (`peers`), and the parsing of a plugin's options
(`options`). Sinks and handlers import from here, never from each other."""
