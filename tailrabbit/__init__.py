"""tailrabbit: ship log lines from FIFOs, stdin and log files into RabbitMQ, confirmed."""

__version__ = "0.1.0"
