"""What AMQP 0-9-1 can carry, checked at load so a config that can never work is refused
with one line (exit 78) instead of a `struct.error` deep in py-amqp at the first declare
or login, which supervisord would restart forever.

Names (queue, exchange, routing key, vhost) travel as `shortstr`: one length octet, so at
most 255 bytes of UTF-8, not 255 characters. The user is held to 255 bytes too (the
`user_id` property that names it is a shortstr), though py-amqp's login sends it in a
longstr. `arguments` travel as a field table; each
value is first walked here to name the culprit in words (a key over 255 bytes, an
integer beyond 64 bits), then encoded with py-amqp's own table encoder, so whatever else
it would refuse at declare time is refused now. `amqp.serialization` is imported only
when a config has `arguments`: importing py-amqp costs 20 ms (60 ms cold), which a
config without arguments need not pay at load (the daemon imports it later anyway).
"""

SHORTSTR_MAX = 255
INT64 = (-(1 << 63), (1 << 63) - 1)


def shortstr_problem(text):
    """None, or why `text` does not fit an AMQP shortstr."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > SHORTSTR_MAX:
        return f"is {size} bytes in UTF-8; AMQP carries at most {SHORTSTR_MAX}"
    return None


def table_problem(table):
    """None, or why the dict `table` (parsed JSON) cannot be sent as an AMQP field table."""
    problem = _walk(table, "")
    if problem:
        return problem
    from amqp.serialization import dumps
    try:
        dumps("F", [table])
    except Exception as error:      # struct.error, FrameSyntaxError, ...: any is a refusal
        return f"cannot be encoded as an AMQP table ({error})"
    return None


def _walk(value, where):
    if isinstance(value, dict):
        for key, item in value.items():
            problem = shortstr_problem(key)
            if problem:
                shown = key if len(key) <= 40 else key[:40] + "..."
                return f"key {shown} {problem}"
            problem = _walk(item, f"{where}.{key}" if where else key)
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = _walk(item, f"{where}[{index}]")
            if problem:
                return problem
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64[0] <= value <= INT64[1]:
            return (f"{where} = {value} does not fit in an AMQP table "
                    f"(integers are at most 64 bits)")
    return None
