# SPDX-License-Identifier: Apache-2.0
#
# A Python program with everything it loads, for a guest that has no Python
# (scripts/gpu-vm-torch.sh: PyTorch in a TCG guest, on the GPU host's own
# Python and NVIDIA's libraries from its wheels).
#
#   python-image.py record LIST SCRIPT [ARG...]
#       runs SCRIPT as __main__ and, at its exit, writes to LIST every file
#       it used: each imported module's source and cached bytecode; the
#       rest of each imported package from site-packages (programs it runs,
#       data it reads) but headers, tests and shared libraries it did not
#       load, and its metadata directory; each shared object mapped
#       (/proc/self/maps) but the GPU driver's own (libcuda, libnvidia-*:
#       in the guest those are vgpu's), the dynamic loader included; the
#       interpreter; then "python=", "pythonpath=" lines.
#   python-image.py stage LIST STAGE
#       copies those files under STAGE for an archive of the guest's root:
#       everything at its own path but the system's libraries (glibc,
#       libstdc++ and the like, of this host's release), which go to
#       STAGE/opt/vgpu/python/lib with every name they are found under, so
#       that they do not replace the guest's; the loader as
#       STAGE/opt/vgpu/python/ld.so; and STAGE/opt/vgpu/python/env with the
#       interpreter's path, its module path and the library directories.
#       In the guest: ld.so --library-path VGPU:STAGE_LIB:DIRS PYTHON SCRIPT.
import os
import re
import runpy
import shutil
import sys

SYSTEM_DIRS = ("/lib/", "/lib64/", "/usr/lib/x86_64-linux-gnu/", "/lib/x86_64-linux-gnu/",
               "/usr/lib64/")
DRIVER = re.compile(r"^lib(cuda|nvidia-[^/]*|nvcuvid)\.so")
SITE = ("site-packages", "dist-packages")
SKIP_DIRS = {"include", "share", "test", "tests", "testing", "benchmarks", "__pycache__"}
SKIP_FILES = r"(\.so(\.[0-9.]*)?|\.a|\.h|\.hpp|\.cuh|\.cmake|\.pyi|\.lib)$"


def record(out, script, args):
    import atexit

    def dump():
        files, tops = set(), set()
        for m in list(sys.modules.values()):
            f = getattr(m, "__file__", None)
            if not f or not os.path.isfile(f):
                continue
            files.add(os.path.abspath(f))
            if f.endswith(".py"):
                import importlib.util
                try:
                    c = importlib.util.cache_from_source(f)
                except (NotImplementedError, ValueError):
                    c = None
                if c and os.path.isfile(c):
                    files.add(c)
            # the top-level package (or single-file module) in site-packages,
            # and its metadata, for importlib.metadata's lookups
            d = os.path.abspath(f)
            while d not in ("/", "") and os.path.basename(os.path.dirname(d)) not in SITE:
                d = os.path.dirname(d)
            parent = os.path.dirname(d)
            if os.path.basename(parent) in SITE:
                if os.path.isdir(d):
                    tops.add(d)
                name = os.path.splitext(os.path.basename(d))[0].replace("-", "_").lower()
                for e in os.listdir(parent):
                    if e.endswith(".dist-info") and e.split("-")[0].lower() == name:
                        for r, _, fs in os.walk(os.path.join(parent, e)):
                            files.update(os.path.join(r, x) for x in fs)
        # the rest of each imported package: programs it runs (torch's
        # torch_shm_manager), data files it reads, modules imported only
        # in the guest; but no headers, tests, static or unloaded shared
        # libraries (the ones loaded are in the maps below)
        for top in sorted(tops):
            for r, ds, fs in os.walk(top):
                ds[:] = [d for d in ds if d not in SKIP_DIRS]
                for x in fs:
                    p = os.path.join(r, x)
                    if (not re.search(SKIP_FILES, x) and os.path.isfile(p) and
                            os.path.getsize(p) <= 64 << 20):
                        files.add(p)
        with open("/proc/self/maps") as maps:
            for line in maps:
                p = line.split(None, 5)
                if len(p) == 6 and p[5].startswith("/") and not p[5].rstrip().endswith("(deleted)"):
                    path = p[5].rstrip()
                    if os.path.isfile(path) and not DRIVER.match(os.path.basename(path)):
                        files.add(path)
        files.add(os.path.realpath(sys.executable))
        with open(out, "w") as o:
            for f in sorted(files):
                o.write(f + "\n")
            o.write("python=" + os.path.realpath(sys.executable) + "\n")
            o.write("pythonpath=" + ":".join(p for p in sys.path[1:] if p and os.path.isdir(p)) + "\n")

    atexit.register(dump)
    sys.argv = [script] + args
    runpy.run_path(script, run_name="__main__")


def system(path):
    return path.startswith(SYSTEM_DIRS) and ".so" in os.path.basename(path)


def stage(listing, root):
    files, env = [], {}
    with open(listing) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("/"):
                files.append(line)
            elif "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    py = os.path.join(root, "opt/vgpu/python")
    lib = os.path.join(py, "lib")
    os.makedirs(lib, exist_ok=True)
    libdirs, size = [], 0
    for f in files:
        real = os.path.realpath(f)
        if not os.path.isfile(real):
            continue
        size += os.path.getsize(real)
        d = os.path.dirname(f)
        # every name the file has in its directory (the loader asks by soname)
        names = [os.path.basename(f)]
        if ".so" in names[0]:
            for e in os.listdir(d):
                p = os.path.join(d, e)
                if e != names[0] and os.path.islink(p) and os.path.realpath(p) == real:
                    names.append(e)
        if os.path.basename(f).startswith("ld-linux"):
            shutil.copy(real, os.path.join(py, "ld.so"))
        if system(f):
            for n in names:
                shutil.copy(real, os.path.join(lib, n))
            continue
        dest = os.path.join(root, d.lstrip("/"))
        os.makedirs(dest, exist_ok=True)
        shutil.copy2(real, os.path.join(dest, names[0]))
        for n in names[1:]:
            if not os.path.lexists(os.path.join(dest, n)):
                os.symlink(names[0], os.path.join(dest, n))
        if ".so" in names[0] and d not in libdirs:
            libdirs.append(d)
    # the interpreter's lib-dynload must exist for its exec prefix to be found
    for f in files:
        if f.endswith("/os.py"):
            os.makedirs(os.path.join(root, os.path.dirname(f).lstrip("/"), "lib-dynload"), exist_ok=True)
    with open(os.path.join(py, "env"), "w") as o:
        o.write("python=%s\npythonpath=%s\nlibdirs=%s\n" % (env["python"], env["pythonpath"], ":".join(libdirs)))
    print("python-image: %d files, %.0f MiB" % (len(files), size / 2 ** 20))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 4 and sys.argv[1] == "stage":
        stage(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python-image.py record LIST SCRIPT [ARG...] | stage LIST STAGE")
