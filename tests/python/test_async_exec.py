"""test_async_exec.py — the async API's executions sit on the library's non-blocking core:
output and exit are awaited on each process's fd (loop.add_reader), not on a worker thread per
call. 50 processes at once in a fresh interpreter must not add ~50 threads, and their output
and exit codes must all arrive; a stream nobody reads must not make the loop spin. Stdin too:
megabytes sent to 8 processes that read late wait on the fd (write_some), not on a thread."""
import os
import subprocess
import sys
import textwrap

import boxlite

SITE = __import__('pathlib').Path(boxlite.__file__).resolve().parent.parent

FIFTY = textwrap.dedent("""\
    import asyncio, resource, sys, threading, time, boxlite

    def native_threads():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def main():
        rt = boxlite.Boxlite(boxlite.Options(home_dir=sys.argv[1]))
        box = await rt.create(boxlite.BoxOptions(image="default"))  # its own: not shared
        await box.start()
        execs = []
        for i in range(50):  # started one by one: one worker thread, reused
            execs.append(await box.exec("sh", ["-c",
                f"echo err-{i} >&2; sleep 3; echo out-{i}; exit {i % 7}"]))
        base = (threading.active_count(), native_threads())
        peak = list(base)
        done = False

        async def sample():
            while not done:
                peak[0] = max(peak[0], threading.active_count())
                peak[1] = max(peak[1], native_threads())
                await asyncio.sleep(0.02)

        async def one(ex):  # stdout awaited while stderr waits unread (kept: no spin), then exit
            lines = [line async for line in ex.stdout()]
            return lines, (await ex.wait()).exit_code

        sampler = asyncio.ensure_future(sample())
        t0, c0 = time.monotonic(), cpu()
        got = await asyncio.gather(*(one(ex) for ex in execs))
        wall, used = time.monotonic() - t0, cpu() - c0
        done = True
        await sampler
        print(f"threads py {base[0]}->{peak[0]} os {base[1]}->{peak[1]} "
              f"wall {wall:.1f}s cpu {used:.2f}s", flush=True)
        assert got == [([f"out-{i}\\n"], i % 7) for i in range(50)], got

        async def stderr_of(ex):
            return [line async for line in ex.stderr()]
        err = await asyncio.wait_for(stderr_of(execs[7]), 60)
        assert err == ["err-7\\n"], err
        await box.stop()  # auto_remove (the default) removes it
        rt.close()

    asyncio.run(main())
    """)


def test_fifty_async_execs_add_no_thread_each(py_home):
    env = dict(os.environ, PYTHONPATH=str(SITE))
    r = subprocess.run([sys.executable, "-c", FIFTY, str(py_home)], capture_output=True,
                       env=env, timeout=600)
    print(r.stdout.decode())
    words = r.stdout.split()
    assert words[:1] == [b"threads"], (r.stdout, r.stderr.decode()[-3000:])
    py0, py1 = (int(x) for x in words[2].split(b"->"))
    os0, os1 = (int(x) for x in words[4].split(b"->"))
    wall, used = float(words[6][:-1]), float(words[8][:-1])
    assert py1 - py0 < 10 and os1 - os0 < 10, r.stdout  # a thread per call would add ~50
    assert used < wall / 2, r.stdout  # the fd of an unread stream does not make the loop spin
    assert r.returncode == 0, (r.stdout, r.stderr.decode()[-3000:])


STDIN8 = textwrap.dedent("""\
    import asyncio, hashlib, resource, sys, threading, time, boxlite

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def main():
        rt = boxlite.Boxlite(boxlite.Options(home_dir=sys.argv[1]))
        box = await rt.create(boxlite.BoxOptions(image="default"))
        await box.start()
        data = bytes(range(256)) * 4096 * 2  # 2 MiB: past the window and the guest's pipe
        execs = [await box.exec("sh", ["-c", "sleep 5; md5sum"]) for _ in range(8)]
        base = threading.active_count()
        peak = [base]
        done = False

        async def sample():
            while not done:
                peak[0] = max(peak[0], threading.active_count())
                await asyncio.sleep(0.02)

        async def one(ex):
            out, inp = ex.stdout(), ex.stdin()
            await inp.send_input(data)
            await inp.close()
            return [line async for line in out], (await ex.wait()).exit_code

        sampler = asyncio.ensure_future(sample())
        t0, c0 = time.monotonic(), cpu()
        got = await asyncio.gather(*(one(ex) for ex in execs))
        wall, used = time.monotonic() - t0, cpu() - c0
        done = True
        await sampler
        print(f"threads {base}->{peak[0]} wall {wall:.1f}s cpu {used:.2f}s", flush=True)
        want = hashlib.md5(data).hexdigest() + "  -\\n"
        assert got == [([want], 0)] * 8, got
        await box.stop()
        rt.close()

    asyncio.run(main())
    """)


def test_async_stdin_waits_on_the_fd_not_a_thread(py_home):
    env = dict(os.environ, PYTHONPATH=str(SITE))
    r = subprocess.run([sys.executable, "-c", STDIN8, str(py_home)], capture_output=True,
                       env=env, timeout=600)
    print(r.stdout.decode())
    words = r.stdout.split()
    assert words[:1] == [b"threads"], (r.stdout, r.stderr.decode()[-3000:])
    t0, t1 = (int(x) for x in words[1].split(b"->"))
    wall, used = float(words[3][:-1]), float(words[5][:-1])
    assert t1 - t0 < 4, r.stdout  # a worker thread per blocked send_input would add 8
    assert used < wall / 2, r.stdout  # waiting for the window does not spin
    assert r.returncode == 0, (r.stdout, r.stderr.decode()[-3000:])
