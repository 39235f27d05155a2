#!/usr/bin/env bash
# A real Slurm cluster on this machine (munged, slurmctld and slurmd on localhost, generated
# config), running deploy/slurm/veil-array.sbatch as a 2-task job array over a manifest of
# fixture clips; then checks that every file was redacted exactly once, with its audit record.
#
#   scripts/slurm-test.sh            (needs root; installs slurm-wlm and munge when missing)
set -euo pipefail
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
veil="$repo/target/release/veil"
[[ -x $veil ]] || { echo "slurm-test: build veil first (make build)" >&2; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  echo "slurm-test: needs root to start munged/slurmctld/slurmd" >&2
  exit 1
fi
scripts/setup.sh slurm-wlm munge >/dev/null

T=$(mktemp -d /tmp/veil-slurm.XXXXXX)
chmod 755 "$T"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) / 2 ))
port=$(( 20000 + RANDOM % 20000 ))
pids=()
cleanup() {
  set +e
  SLURM_CONF="$T/slurm.conf" scancel --quiet --user root 2>/dev/null
  disown -a 2>/dev/null
  [[ -f $T/munge-run/munged.pid ]] && kill "$(cat "$T/munge-run/munged.pid")" 2>/dev/null
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  if [[ ${keep:-0} != 1 ]]; then rm -rf "$T"; fi
}
trap cleanup EXIT

# munge: a private key and socket for this test.
mkdir -p "$T/munge" "$T/munge-run"
head -c 1024 /dev/urandom >"$T/munge/munge.key"
chown -R munge:munge "$T/munge" "$T/munge-run"
chmod 700 "$T/munge"
chmod 755 "$T/munge-run"
chmod 400 "$T/munge/munge.key"
sock="$T/munge-run/munge.socket"
runuser -u munge -- /usr/sbin/munged --key-file="$T/munge/munge.key" --socket="$sock" \
  --pid-file="$T/munge-run/munged.pid" --log-file="$T/munge/munged.log" --seed-file="$T/munge/seed" \
  --foreground 2>"$T/munged.err" &
pids+=($!)
for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || { echo "slurm-test: munged did not start" >&2; cat "$T/munged.err" >&2; exit 1; }

mkdir -p "$T/state" "$T/spool"
cat >"$T/slurm.conf" <<CONF
ClusterName=veiltest
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$T/slurm.conf"
/usr/sbin/slurmctld -D -i -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
pids+=($!)
/usr/sbin/slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 100); do
  state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
  [[ $state == idle ]] && break
  sleep 0.3
done
if [[ $state != idle ]]; then
  echo "slurm-test: node not idle (state '$state')" >&2
  tail -n 20 "$T"/slurmctld.log "$T"/slurmd.log "$T"/*.out >&2 || true
  exit 1
fi
echo "slurm-test: cluster up ($(sinfo -h -o '%P %D %c %T'), slurm $(sinfo -V))"

# A manifest of fixture clips and stills on "shared storage" (here: the temp folder).
mkdir -p "$T/in" "$T/out"
names=(face_carphone_352x288.mp4 synth_noaudio_320x240.mp4 synth_vfr_320x240.mp4 synth_audio_320x240.mkv astronaut.png astronaut.jpg)
: >"$T/in/manifest.txt"
for n in "${names[@]}"; do
  cp "fixtures/$n" "$T/in/$n"
  echo "$n" >>"$T/in/manifest.txt"
done
job=$(VEIL="$veil" sbatch --parsable --array=0-1 --cpus-per-task=1 --mem=1G --time=10 \
  --output="$T/veil-%A_%a.log" deploy/slurm/veil-array.sbatch "$T/in/manifest.txt" "$T/out")
echo "slurm-test: submitted array job $job"
for _ in $(seq 600); do
  [[ -z $(squeue -h -j "$job" 2>/dev/null) ]] && break
  sleep 0.5
done
if [[ -n $(squeue -h -j "$job" 2>/dev/null) ]]; then
  echo "slurm-test: job $job did not finish in 5 minutes" >&2
  squeue >&2; cat "$T"/veil-*.log >&2 || true
  exit 1
fi

# Every file done exactly once across the two tasks, with a valid output and audit record.
python3 - "$T" "${names[@]}" <<'PY'
import json, subprocess, sys
from pathlib import Path
T = Path(sys.argv[1]); names = sys.argv[2:]
reports = sorted((T / "out").glob("batch-report-*-of-2.json"))
if len(reports) != 2:
    for log in T.glob("veil-*.log"):
        print(log.read_text(), file=sys.stderr)
    sys.exit(f"slurm-test: expected 2 shard reports, found {[r.name for r in reports]}")
seen = {}
for r in reports:
    for f in json.loads(r.read_text())["files"]:
        name = Path(f["input"]).name
        assert f["status"] == "done", f"{name}: {f['status']} {f.get('error')}"
        assert name not in seen, f"{name} processed by two tasks"
        seen[name] = r.name
missing = set(names) - set(seen)
assert not missing, f"never processed: {missing}"
for n in names:
    out = T / "out" / n
    audit = json.loads(Path(str(out) + ".audit.json").read_text())
    assert audit["output"]["frames"] == audit["input"]["frames"], n
print(f"slurm-test: {len(names)} files, each done exactly once across 2 array tasks:",
      ", ".join(f"{n} ({seen[n]})" for n in names))
PY
partial=$(find "$T/out" -name '*.veil-partial-*' | wc -l)
[[ $partial -eq 0 ]] || { echo "slurm-test: $partial partial files left" >&2; exit 1; }
echo "slurm-test: passed"
