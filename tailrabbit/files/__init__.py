"""Log-file plumbing: watching directories, file identity, saved read positions."""
