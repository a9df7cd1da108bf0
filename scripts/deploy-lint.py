#!/usr/bin/env python3
"""Checks of deploy/ that no general validator knows: what tenure itself requires of them.

Usage (scripts/deploy-check.sh runs it from the repository root; needs PyYAML):

    scripts/deploy-lint.py [--statefulset FILE] [--dockerfile FILE] [--unit FILE]

- The StatefulSet's pods meet the Pod Security Standards' `restricted` level, checked offline
  as the PodSecurity admission controller would: host namespaces and ports, privileged
  containers, volume types, privilege escalation, running as root, seccomp, capabilities,
  sysctls and /proc mounts.
- Its readiness probe (/joined) tolerates failures for at least two leases (the --lease in its
  arguments), so that a failover does not make followers NotReady.
- The Dockerfile's last stage, which `docker build` without --target builds, is the plain
  `tenure` image, and a `dagster` stage exists for --target dagster.
- The systemd unit does not set TENURE_LOG_FORMAT (it would override the config file), and
  RestartPreventExitStatus= names the configuration-error status the binary exits with
  (EXIT_CONFIGURATION in crates/node/src/bin/tenure.rs).

Prints one line per problem and exits 1 if there is any.
"""

import argparse
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
ALLOWED_CAPABILITIES = {"NET_BIND_SERVICE"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}


def pod_specs(document):
    """Yields (name, pod spec) for every pod a manifest document describes."""
    kind = document.get("kind")
    name = f"{kind}/{document.get('metadata', {}).get('name', '?')}"
    spec = document.get("spec") or {}
    if kind == "Pod":
        yield name, spec
    elif kind in ("StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"):
        yield name, spec.get("template", {}).get("spec", {})
    elif kind == "CronJob":
        yield name, spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})


def violations(spec):
    """The restricted-level controls that `spec` (a pod spec) breaks, as sentences."""
    found = []
    pod_context = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"{field} is set")
    for volume in spec.get("volumes") or []:
        types = set(volume) - {"name"}
        if not types <= RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume.get('name')!r} is of type {sorted(types)}")
    if pod_context.get("sysctls"):
        found.append("the pod sets sysctls")
    if pod_context.get("runAsUser") == 0:
        found.append("the pod runs as user 0")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        found.append(f"the pod's seccompProfile is {pod_seccomp}")

    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    for container in containers:
        where = f"container {container.get('name')!r}"
        context = container.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f"{where} is privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where} does not set allowPrivilegeEscalation: false")
        run_as_non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        if run_as_non_root is not True:
            found.append(f"{where} does not run with runAsNonRoot: true")
        if context.get("runAsUser") == 0:
            found.append(f"{where} runs as user 0")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ALLOWED_SECCOMP:
            found.append(f"{where} has no seccompProfile RuntimeDefault or Localhost")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where} does not drop ALL capabilities")
        added = set(capabilities.get("add") or []) - ALLOWED_CAPABILITIES
        if added:
            found.append(f"{where} adds capabilities {sorted(added)}")
        if context.get("procMount", "Default") != "Default":
            found.append(f"{where} sets procMount")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{where} uses hostPort {port['hostPort']}")
    return found


def pod_security_problems(path):
    """Violations of `restricted` by the pods in the manifest at `path`."""
    problems = []
    pods = 0
    with open(path) as file:
        for document in yaml.safe_load_all(file):
            for name, spec in pod_specs(document or {}):
                pods += 1
                problems += [f"{name}: {violation}" for violation in violations(spec)]
    if pods == 0:
        problems.append("no pod template found; nothing was checked")
    return problems


def seconds(duration):
    """Seconds in a tenure duration such as `6s`, `500ms` or `1m`."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    if not match:
        raise ValueError(f"cannot read the duration {duration!r}")
    return float(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def readiness_problems(path):
    """Whether each tenure container's readiness probe outlasts two leases of failures."""
    problems = []
    with open(path) as file:
        for document in yaml.safe_load_all(file):
            for name, spec in pod_specs(document or {}):
                for container in spec.get("containers") or []:
                    arguments = container.get("args") or []
                    if "run" not in arguments:
                        continue
                    # tenure's default lease is 2 s.
                    leases = [a.split("=", 1)[1] for a in arguments if a.startswith("--lease=")]
                    lease = seconds(leases[0]) if leases else 2.0
                    probe = container.get("readinessProbe") or {}
                    if (probe.get("httpGet") or {}).get("path") != "/joined":
                        problems.append(f"{name}: the readiness probe is not GET /joined")
                        continue
                    # Kubernetes' defaults: every 10 s, NotReady after 3 failures.
                    tolerated = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
                    if tolerated < 2 * lease:
                        problems.append(
                            f"{name}: the readiness probe turns NotReady after {tolerated} s of "
                            f"failures, less than two leases ({2 * lease} s): every failover "
                            "would make followers NotReady"
                        )
    return problems


def dockerfile_problems(path):
    """Whether `docker build` without --target builds the plain image."""
    with open(path) as file:
        stages = re.findall(r"(?im)^FROM\s+\S+(?:\s+AS\s+(\S+))?\s*$", file.read())
    problems = []
    if not stages or stages[-1].lower() != "tenure":
        problems.append(
            f"the last stage is {stages[-1] if stages else None!r}, not 'tenure': "
            "`docker build -f deploy/Dockerfile -t tenure .` would build another image"
        )
    if "dagster" not in [stage.lower() for stage in stages]:
        problems.append("no stage 'dagster' for `--target dagster`")
    return problems


def unit_problems(path):
    """Whether the systemd unit lets the config file decide and stops on config errors."""
    with open(os.path.join(ROOT, "crates/node/src/bin/tenure.rs")) as file:
        match = re.search(r"const EXIT_CONFIGURATION: u8 = (\d+);", file.read())
    if not match:
        return ["EXIT_CONFIGURATION not found in crates/node/src/bin/tenure.rs"]
    configuration_error = match.group(1)
    with open(path) as file:
        settings = [line.strip() for line in file if not line.lstrip().startswith("#")]
    problems = []
    if any(line.startswith("Environment=") and "TENURE_" in line for line in settings):
        problems.append("the unit sets TENURE_* variables, which override the config file")
    prevent = [line.split("=", 1)[1].split() for line in settings
               if line.startswith("RestartPreventExitStatus=")]
    if not any(configuration_error in statuses for statuses in prevent):
        problems.append(
            f"RestartPreventExitStatus= lacks {configuration_error}, the exit status of a "
            "configuration error: a bad config would restart forever"
        )
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statefulset", default="deploy/kubernetes/statefulset.yaml")
    parser.add_argument("--dockerfile", default="deploy/Dockerfile")
    parser.add_argument("--unit", default="deploy/tenure.service")
    arguments = parser.parse_args()
    checks = [
        ("pod security (restricted)", arguments.statefulset, pod_security_problems),
        ("readiness through a failover", arguments.statefulset, readiness_problems),
        ("Dockerfile default target", arguments.dockerfile, dockerfile_problems),
        ("systemd unit", arguments.unit, unit_problems),
    ]
    bad = 0
    for title, path, check in checks:
        problems = check(path)
        for problem in problems:
            print(f"{path}: {problem}")
        print(f"deploy-lint: {title}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        bad += len(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
