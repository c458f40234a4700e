"""Everything that speaks AMQP. The only package that imports `amqp`."""
