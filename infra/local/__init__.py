"""The local AWS stack: the moto emulator (stack.py, moto_app.py), the local runner of
serverless.yml's schedules and queue events (scheduler.py), the payment stack (paystack.py)
and the shell entry points of `make test` (run_tests.sh, with_stack.sh).
`python -m infra.local ...` is `python -m infra.local.stack ...`."""
