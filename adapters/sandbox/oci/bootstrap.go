package oci

// bootstrap is what the container's Python (its init, pid 1) runs with -c
// before there is a script: it finishes the interpreter's start-up, says so
// on the control socket (fd 3, passed with runc's --preserve-fds), and waits
// for "G<cpu seconds>\n". By then the host has written the script into the
// bundle file bind-mounted at /sandbox/main.py and armed the script's limits
// on the container's cgroup (see waiting.handoff). It closes the socket, so
// that the script inherits nothing of the host, lowers RLIMIT_CPU to the
// run's backstop, and runs the script in this interpreter as __main__, as
// `python3 -I -B -u /sandbox/main.py` would: same flags, same pid, same
// file name in tracebacks, the job's stdin untouched on fd 0 (nothing here
// reads it), and the same report of an uncaught exception (without this
// bootstrap's frame) or a syntax error. Python's start-up thus costs the
// script neither its CPU quota nor its time limit.
//
// Anything but the expected messages ends the container with 125, which no
// script's result can be mistaken for: handoff never reads the result of a
// container it did not hand a script to.
const bootstrap = `import os, sys
os.write(3, b"R")
msg = b""
while not msg.endswith(b"\n"):
    c = os.read(3, 1)
    if not c or len(msg) > 24:
        os._exit(125)
    msg += c
os.close(3)
if msg[:1] != b"G" or not msg[1:-1].isdigit():
    os._exit(125)
import resource, types
cpu = int(msg[1:-1])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
path = "/sandbox/main.py"
with open(path, "rb") as f:
    src = f.read()
main = types.ModuleType("__main__")
main.__file__, main.__cached__ = path, None
main.__builtins__ = __builtins__
sys.modules["__main__"] = main
sys.argv[:] = [path]
del c, msg, cpu, f, main, resource, types
try:
    exec(compile(src, path, "exec", dont_inherit=True), sys.modules["__main__"].__dict__)
except SystemExit:
    raise
except BaseException as e:
    # Python's own report, without this frame (the default hook prints the
    # exception's __traceback__).
    e.__traceback__ = e.__traceback__.tb_next
    sys.excepthook(type(e), e, e.__traceback__)
    # An uncaught KeyboardInterrupt makes Python kill itself with SIGINT,
    # which the init of a pid namespace ignores: it then exits 130.
    sys.exit(130 if isinstance(e, KeyboardInterrupt) else 1)
`
