#!/usr/bin/env bash
# The GPU checks of issue #7 in one device call, each step under its own time limit and every round
# printed as it ends (a step cut short still says what it measured). There, from the repository's root,
# with .gpuqt carried (`bash benchmarks/gpu_gui_check.sh bundle` builds it here):
#
#     bash benchmarks/gpu_session.sh [STEP...]          (default: side-check side side-lenet)
#
#   side        the MLP (one example per step) trained from the window against headless, side by side
#               as on the CPU (both on the GPU at once, each side's processes on a core of their own,
#               swapped every 0.05 s; 8 rounds, 200 s)
#   side-lenet  LeNet-5 likewise (4 rounds, 120 s)
#   side-check  the MLP headless against headless side by side: that method's noise on the GPU machine
#               (8 rounds, 200 s)
#   mlp         the MLP trained from the window against headless, in turns (8 rounds, about 30 s
#               each: 270 s; the turns weigh against the app: benchmarks/README.md)
#   nice0       the same with the training process at the window's priority (DEEPCANVAS_TRAINING_NICE=0)
#   lenet       LeNet-5 from the window against headless, in turns (3 rounds, 100 s)
#   self-check  the MLP headless against headless, in turns: the method's own noise and bias on that
#               machine (4 rounds, about 35 s each: 160 s)
#   job         bench_job.py: the app's training job against the bare trainer in one process, and
#               without each of its parts (6 rounds, 150 s)
#   tests       tests/test_cuda.py (23 tests, about 100 s: 150 s)
#
# Logs: $OUT/STEP.log (or gpu_check_out/), and $OUT/times.log. A step's time limit: its name in capitals,
# - as _, and _S, e.g. SIDE_CHECK_S=300
# (the device tool's call ends at 600 s; its machines are lent for 15 minutes a session).
set -u
O=${OUT:-gpu_check_out}
mkdir -p "$O"
S=$(date +%s)
[ $# -gt 0 ] || set -- side-check side side-lenet
steps="side side-lenet side-check mlp nice0 lenet self-check job tests"
for step in "$@"; do  # (all names first: a misspelt last step would be found after minutes of device time)
    case " $steps " in *" $step "*) ;; *) echo "unknown step '$step' ($steps)"; exit 2 ;; esac
done
turns="--turns --lag-rounds 1 --seconds 3 --epochs 100000 --each-round"
side="--side-by-side --lag-rounds 1 --seconds 3 --epochs 100000 --each-round"
for step in "$@"; do
    echo "== $step at $(( $(date +%s) - S )) s" | tee -a "$O/times.log"
    case $step in
    side) timeout -k 10 "${SIDE_S:-200}" bash benchmarks/gpu_gui_check.sh run $side --rounds 8 --only mlp ;;
    side-lenet) timeout -k 10 "${SIDE_LENET_S:-120}" bash benchmarks/gpu_gui_check.sh run $side --rounds 4 --only lenet ;;
    side-check) timeout -k 10 "${SIDE_CHECK_S:-200}" bash benchmarks/gpu_gui_check.sh run $side --self-check --rounds 8 --only mlp ;;
    mlp) timeout -k 10 "${MLP_S:-270}" bash benchmarks/gpu_gui_check.sh run $turns --rounds 8 --only mlp ;;
    nice0) DEEPCANVAS_TRAINING_NICE=0 timeout -k 10 "${NICE0_S:-270}" bash benchmarks/gpu_gui_check.sh run $turns --rounds 8 --only mlp ;;
    lenet) timeout -k 10 "${LENET_S:-100}" bash benchmarks/gpu_gui_check.sh run $turns --rounds 3 --only lenet ;;
    self-check) timeout -k 10 "${SELF_CHECK_S:-160}" bash benchmarks/gpu_gui_check.sh run $turns --self-check --rounds 4 --only mlp ;;
    job) timeout -k 10 "${JOB_S:-150}" bash benchmarks/gpu_gui_check.sh job --only mlp --rounds 6 \
             --modes bare,app,no-health,no-preview,no-events ;;
    tests) timeout -k 10 "${TESTS_S:-150}" bash benchmarks/gpu_gui_check.sh tests ;;
    esac > >(tee "$O/$step.log") 2>&1
    rc=$?
    wait $!  # (tee's last lines written before the next step's)
    echo "== $step ended with exit status $rc$([ $rc = 124 ] && echo ' (its time limit)')" | tee -a "$O/times.log"
    for f in bench_gui_cuda.log bench_job_cuda.log test_cuda.log; do rm -f "$O/$f"; done
done
echo "== end at $(( $(date +%s) - S )) s" | tee -a "$O/times.log"
