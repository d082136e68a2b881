"""Pure decisions (SPEC §3, §4): routing, call status and outcome, number status, test-call steps, phones.

Plain values in, plain values out: nothing here imports Flask or the database.
"""
