"""Pure rules of the platform: entities, enums, transition tables, version rules, errors.

Invariant: nothing here imports a framework or does I/O beyond reading text it is handed.
"""
