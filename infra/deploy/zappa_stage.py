"""zappa's `post` callback (zappa_settings.json `callbacks.post`): the REST API stage's
throttling, which zappa itself cannot express.

zappa 0.63 creates the Flask app's API Gateway stage by API calls (create_deployment,
update_stage) outside its CloudFormation template and has no setting for stage
throttling. After every `zappa deploy` / `zappa update` it calls this function with its
CLI object; this applies `feikong_stage_throttling` of the stage's settings
({"rate_limit": requests per second, "burst_limit": requests}) to every method of the
stage (`/*/*/throttling/...`), so the limits are declared in zappa_settings.json next to
the rest of the app's deployment and checked offline by infra/deploy/deploy_check.py.

zappa loads this file by path (not as part of a package): standard library only.
"""

from __future__ import annotations

SETTING = "feikong_stage_throttling"
CALLBACK = "infra.deploy.zappa_stage.apply_stage_settings"


def throttling_problems(stage_config: dict) -> list[str]:
    """What is wrong with a stage's throttling settings (empty: fine)."""
    t = stage_config.get(SETTING)
    if not isinstance(t, dict):
        return [f"{SETTING} is missing"]
    rate, burst = t.get("rate_limit"), t.get("burst_limit")
    problems = []
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        problems.append(f"{SETTING}.rate_limit must be a positive number of requests per second")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst <= 0:
        problems.append(f"{SETTING}.burst_limit must be a positive integer")
    elif not problems and burst < rate:
        problems.append(f"{SETTING}.burst_limit must be at least rate_limit")
    return problems


def patch_operations(stage_config: dict) -> list[dict]:
    """update_stage patch operations that throttle every method of the stage."""
    problems = throttling_problems(stage_config)
    if problems:
        raise ValueError("; ".join(problems))
    t = stage_config[SETTING]
    return [{"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(t["rate_limit"])},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(t["burst_limit"])}]


def apply_stage_settings(cli) -> None:
    """zappa's callback: `cli` is its ZappaCLI (stage_config, api_stage, lambda_name, zappa)."""
    ops = patch_operations(cli.stage_config)
    api_id = cli.zappa.get_api_id(cli.lambda_name)
    if not api_id:  # apigateway_enabled false: no stage to throttle
        return
    cli.zappa.apigateway_client.update_stage(restApiId=api_id, stageName=cli.api_stage, patchOperations=ops)
    print(f"API Gateway stage {cli.api_stage}: throttled to {ops[0]['value']} requests/s, burst {ops[1]['value']}")
