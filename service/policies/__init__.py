"""Study policies as pure decision functions: pruning, study stopping, warm start.

None of them reads the database: the caller (the state machine's users in service.core)
fetches what a rule needs through the store's reader and passes plain values in, so every
rule is decided the same way by any server process and is testable without a database.
"""
