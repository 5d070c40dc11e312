#!/usr/bin/env bash
# The app's window training on a GPU machine that has PyTorch but no Qt (the device tool's machines):
#
#     bash benchmarks/gpu_gui_check.sh bundle      here (Linux x86-64, with .venv and pip): builds .gpuqt/,
#                                                  about 50 MB: a PySide6-Essentials wheel cut down to the
#                                                  Qt modules the app uses, pyqtgraph, NodeGraphQt, Qt.py,
#                                                  shiboken6, kornia (+ kornia_rs for Python 3.12), the
#                                                  system libraries Qt loads and a font
#     bash benchmarks/gpu_gui_check.sh run [ARGS]  there, from the repository's root, with .gpuqt carried:
#                                                  unpacks it, uses only the libraries the machine lacks,
#                                                  and runs bench_gui_training.py --device cuda ARGS
#                                                  (default: --turns --rounds 9 --lag-rounds 1 --seconds 3
#                                                  --epochs 100000 --each-round) into $OUT (or gpu_check_out/)
#     bash benchmarks/gpu_gui_check.sh job [ARGS]  there too: bench_job.py --device cuda ARGS (default:
#                                                  --only mlp --rounds 8 --modes
#                                                  bare,app,no-health,no-preview,no-events), what the app's
#                                                  training job costs a run without the window, part by part
#     bash benchmarks/gpu_gui_check.sh tests [ARGS]  there too: tests/test_cuda.py, with Qt (ARGS to pytest)
#
# benchmarks/gpu_session.sh runs these as one device call, each under its own time limit.
#
# (.gitignore leaves .gpuqt/ out of commits; the device tool carries it when asked.) The figures of 2026-11-27 and what they do not settle:
# benchmarks/README.md, "The app's window on the GPU machine".
set -u
G=.gpuqt
case "${1:-}" in
bundle)
    set -e
    PY=${PYTHON:-.venv/bin/python}
    mkdir -p $G/fonts /tmp/gpuqt-download
    versions=$($PY -m pip list --format=freeze 2>/dev/null | grep -iE '^(pyside6[-_]essentials|shiboken6|pyqtgraph|nodegraphqt|qt\.py|kornia|kornia[-_]rs)==' | tr '\n' ' ')
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
        --platform manylinux_2_34_x86_64 --platform manylinux_2_39_x86_64 -d /tmp/gpuqt-download $versions
    $PY - "$G" <<'EOF'
import glob, re, shutil, sys, zipfile
out = sys.argv[1]
mods = "Core|Gui|Widgets|Svg|SvgWidgets|OpenGL|OpenGLWidgets|DBus|Network|Test"
keep = [r"^PySide6/[^/]+\.py$", rf"^PySide6/Qt({mods})\.abi3\.so$", r"^PySide6/libpyside6\.", r"^PySide6/support/",
        r"\.dist-info/", rf"^PySide6/Qt/lib/libQt6({mods}|XcbQpa)\.so", r"^PySide6/Qt/lib/libicu",
        r"^PySide6/Qt/plugins/(platforms/libqoffscreen\.so|imageformats/|iconengines/)"]
for w in glob.glob("/tmp/gpuqt-download/*.whl"):
    name = w.rsplit("/", 1)[1]
    if not name.lower().startswith("pyside6"):
        shutil.copy(w, f"{out}/{name}")
        continue
    with zipfile.ZipFile(w) as zin, zipfile.ZipFile(f"{out}/{name}", "w", zipfile.ZIP_DEFLATED) as z:
        for i in zin.infolist():
            if any(re.search(k, i.filename) for k in keep):
                z.writestr(i, zin.read(i))
EOF
    # The system libraries Qt's core, GUI, widgets and offscreen platform load, but the C/C++ runtime's.
    S=$($PY -c "import PySide6, os; print(os.path.dirname(PySide6.__file__))")
    rm -rf /tmp/gpuqt-lib && mkdir -p /tmp/gpuqt-lib/lib
    ldd $S/QtWidgets.abi3.so $S/QtGui.abi3.so $S/QtSvg.abi3.so $S/Qt/plugins/platforms/libqoffscreen.so $S/Qt/lib/libQt6DBus.so.6 \
        | awk '/=> \// {print $3}' | grep -v PySide6 | grep -vE '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so' \
        | sort -u | xargs -I{} cp -L {} /tmp/gpuqt-lib/lib/
    tar cJf $G/lib.tar.xz -C /tmp/gpuqt-lib lib
    cp "$(fc-match -f '%{file}' 'DejaVu Sans')" $G/fonts/ 2>/dev/null || echo "no DejaVu Sans here: Qt will draw without a font"
    du -sh $G
    ;;
run|job|tests)
    what=$1
    shift
    out=${OUT:-gpu_check_out}
    mkdir -p "$out" /tmp/gpuqt-site /tmp/gpuqt-libs /tmp/gpuqt-fonts /tmp/gpuqt-fontcache
    python3 -c "
import glob, zipfile
for w in glob.glob('$G/*.whl'):
    zipfile.ZipFile(w).extractall('/tmp/gpuqt-site')"
    tar xJf $G/lib.tar.xz -C /tmp/gpuqt-libs
    mkdir -p /tmp/gpuqt-libs/use
    for f in /tmp/gpuqt-libs/lib/*; do  # only what the machine lacks
        n=$(basename "$f"); ldconfig -p | grep -q " $n " || ln -sf "$f" /tmp/gpuqt-libs/use/"$n"
    done
    cp $G/fonts/*.ttf /tmp/gpuqt-fonts/ 2>/dev/null
    printf '<?xml version="1.0"?>\n<fontconfig><dir>/tmp/gpuqt-fonts</dir><dir>/usr/share/fonts</dir><cachedir>/tmp/gpuqt-fontcache</cachedir></fontconfig>\n' >/tmp/gpuqt-fonts/fonts.conf
    export PYTHONPATH=$PWD:/tmp/gpuqt-site LD_LIBRARY_PATH=/tmp/gpuqt-libs/use${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export FONTCONFIG_FILE=/tmp/gpuqt-fonts/fonts.conf QT_QPA_PLATFORM=offscreen PYTHONUNBUFFERED=1
    python3 -c "from PySide6 import QtWidgets; QtWidgets.QApplication(['x']); import gui.mainwindow; print('Qt: ok')" \
        || { ldd /tmp/gpuqt-site/PySide6/Qt/lib/*.so* | grep 'not found' | sort -u; exit 1; }
    nvidia-smi -L || true
    set -o pipefail  # (the exit status is the benchmark's or pytest's, not tee's)
    if [ "$what" = tests ]; then
        python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py "$@" 2>&1 | tee "$out/test_cuda.log"
        exit
    fi
    if [ "$what" = job ]; then
        [ $# -gt 0 ] || set -- --only mlp --rounds 8 --modes bare,app,no-health,no-preview,no-events
        python3 benchmarks/bench_job.py --device cuda "$@" 2>&1 | tee "$out/bench_job_cuda.log"
        exit
    fi
    [ $# -gt 0 ] || set -- --turns --rounds 9 --lag-rounds 1 --seconds 3 --epochs 100000 --each-round
    python3 benchmarks/bench_gui_training.py --device cuda "$@" 2>&1 | grep --line-buffered -v propagateSize \
        | tee "$out/bench_gui_cuda.log"
    ;;
*)
    sed -n "2,/^# benchmarks\/README/p" "$0"
    exit 2
    ;;
esac
