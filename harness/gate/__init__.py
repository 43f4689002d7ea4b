"""The pre-release gate: the canary flows and the RFC's phase exit criteria
(`harness gate --phase N`), judged with the contracts of `contracts/`."""
