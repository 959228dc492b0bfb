"""Source grants: which sources, tables and statements a team may reach, checked at every
door (create, patch, each run's start, commands from the queue)."""
