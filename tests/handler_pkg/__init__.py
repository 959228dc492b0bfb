"""What the destination and handler tests talk to: a package of Python handlers, as a team
would ship its transfers (transfers.py), and a webhook receiver (peer.py)."""
