"""A scale-out benchmark of socialgrid: a real deployment on this machine (uvicorn, Celery
workers and beat, PostgreSQL, Redis), thousands of simulated volunteers speaking the real
WebSocket protocol, and one table of throughput, latency, CPU and memory per process and an
audit of lost and double-credited results. Run ``python -m bench.harness.run --help``;
bench/README.md describes every column."""
