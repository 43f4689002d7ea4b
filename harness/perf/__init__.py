"""Performance tools: `harness bench` (throughput beside a same-run baseline, peers, CPU per job) and
`harness bench --instructions` (instructions per job counted by callgrind)."""
