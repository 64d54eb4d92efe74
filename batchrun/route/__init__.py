"""Where a record goes: providers, routes, the canary and the shadow. Pure decisions, no I/O."""
