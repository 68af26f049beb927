"""The remediation workflow, one module per step (imported one by one: nothing is loaded here).

state (the wire types) → resolve → repair (one per function+qualifier) → outcome (summarize);
in_process runs them all in one process; audit writes the ledger; scan and revert use the same
pieces read-only / backwards.
"""
