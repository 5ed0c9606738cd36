#!/bin/bash
# Runs one jaxpretrain command on every worker of a Cloud TPU VM slice (v4-32, v5e-64, ...).
#
#   TPU_NAME=my-pod ZONE=us-central2-b launch/tpu_pod.sh setup          # once: install on all workers
#   TPU_NAME=my-pod ZONE=us-central2-b launch/tpu_pod.sh pretrain \
#       --config=configs/tiny.py --workdir=/mnt/shared/runs/bert [--config.KEY=VALUE ...]
#   TPU_NAME=my-pod ZONE=us-central2-b launch/tpu_pod.sh stop           # kill stray processes
#
# `--coordinator_address=auto` makes each worker call `jax.distributed.initialize()`, which finds
# the slice's workers from the TPU metadata. The workdir and data.prepared_dir must be a
# filesystem all workers share at the same path (Filestore/NFS, or a gcsfuse-mounted bucket).
# REPO_DIR is where the repository lives on the workers (the setup step copies it there).

set -euo pipefail

TPU_NAME=${TPU_NAME:?set TPU_NAME to the TPU VM name}
ZONE=${ZONE:?set ZONE to the TPU zone}
PROJECT=${PROJECT:-$(gcloud config get-value project 2>/dev/null)}
REPO_DIR=${REPO_DIR:-jaxpretrain}

on_all_workers() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --project="$PROJECT" --worker=all --command="$1"
}

case "${1:?usage: launch/tpu_pod.sh setup|stop|pretrain|finetune [flags...]}" in
  setup)
    here=$(cd "$(dirname "$0")/.." && pwd)
    gcloud compute tpus tpu-vm scp --recurse "$here" "$TPU_NAME:$REPO_DIR" --zone="$ZONE" --project="$PROJECT" \
      --worker=all
    on_all_workers "pip install -U 'jax[tpu]' && pip install -e '$REPO_DIR'"
    ;;
  stop)
    # A killed run can leave a process holding the TPU on some worker; the next run then fails.
    on_all_workers "pkill -f 'jaxpretrain (pretrain|finetune)' || true"
    ;;
  pretrain|finetune)
    command=$1
    shift
    args=$(printf ' %q' "$@")
    on_all_workers "cd '$REPO_DIR' && jaxpretrain $command --coordinator_address=auto$args"
    ;;
  *)
    echo "unknown action $1; choose setup, stop, pretrain or finetune" >&2
    exit 2
    ;;
esac
