// Minimal WASI (wasi_snapshot_preview1) for the Signpost module in browsers.
//
// It implements exactly the imports that Go's wasip1 runtime in
// signpost.wasm declares (a Go test, TestShimCoversModuleImports, checks the
// list against the module) and nothing else: no files, no arguments, no
// environment, stdout/stderr to the console, randomness from
// crypto.getRandomValues. See docs/RATIONALE.md, "Why our own WASI shim?".
//
// Usage: const wasi = new WASI(); instantiate with
// { wasi_snapshot_preview1: wasi.imports }, then wasi.start(instance), which
// runs the reactor's _initialize export.

const ESUCCESS = 0;
const EBADF = 8;

export class WASIExit extends Error {
  constructor(code) {
    super(`wasm module exited with code ${code}`);
    this.code = code;
  }
}

export class WASI {
  constructor() {
    this.memory = null;
    this.lines = ["", ""]; // partial stdout, stderr lines
    const mem = () => new DataView(this.memory.buffer);
    const bytes = (ptr, len) => new Uint8Array(this.memory.buffer, ptr, len);
    const zeroPair = (a, b) => {
      const v = mem();
      v.setUint32(a, 0, true);
      v.setUint32(b, 0, true);
      return ESUCCESS;
    };
    const decoder = new TextDecoder();
    this.imports = {
      args_sizes_get: (argc, bufSize) => zeroPair(argc, bufSize),
      args_get: () => ESUCCESS,
      environ_sizes_get: (count, bufSize) => zeroPair(count, bufSize),
      environ_get: () => ESUCCESS,
      clock_time_get: (id, _precision, out) => {
        // 0 realtime, 1 monotonic; nanoseconds as u64.
        const ns = id === 0
          ? BigInt(Date.now()) * 1000000n
          : BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
        mem().setBigUint64(out, ns, true);
        return ESUCCESS;
      },
      random_get: (ptr, len) => {
        for (let off = 0; off < len; off += 65536) {
          crypto.getRandomValues(bytes(ptr + off, Math.min(65536, len - off)));
        }
        return ESUCCESS;
      },
      fd_write: (fd, iovs, iovsLen, nwritten) => {
        if (fd !== 1 && fd !== 2) return EBADF;
        const v = mem();
        let total = 0;
        for (let i = 0; i < iovsLen; i++) {
          const ptr = v.getUint32(iovs + 8 * i, true);
          const len = v.getUint32(iovs + 8 * i + 4, true);
          this.lines[fd - 1] += decoder.decode(bytes(ptr, len).slice());
          total += len;
        }
        const parts = this.lines[fd - 1].split("\n");
        this.lines[fd - 1] = parts.pop();
        for (const line of parts) (fd === 1 ? console.log : console.error)(line);
        v.setUint32(nwritten, total, true);
        return ESUCCESS;
      },
      fd_read: (fd, _iovs, _iovsLen, nread) => {
        if (fd !== 0) return EBADF;
        mem().setUint32(nread, 0, true); // stdin is empty
        return ESUCCESS;
      },
      fd_close: () => EBADF,
      fd_fdstat_get: (fd, out) => {
        if (fd > 2) return EBADF;
        const v = mem();
        v.setUint8(out, 2); // character device
        v.setUint16(out + 2, 0, true);
        v.setBigUint64(out + 8, 0n, true);
        v.setBigUint64(out + 16, 0n, true);
        return ESUCCESS;
      },
      fd_fdstat_set_flags: () => ESUCCESS,
      fd_prestat_get: () => EBADF, // no preopened directories
      fd_prestat_dir_name: () => EBADF,
      poll_oneoff: (inPtr, outPtr, nsubs, nevents) => {
        // A page cannot block: report every subscription as ready at once.
        const v = mem();
        for (let i = 0; i < nsubs; i++) {
          const sub = inPtr + 48 * i;
          const ev = outPtr + 32 * i;
          v.setBigUint64(ev, v.getBigUint64(sub, true), true); // userdata
          v.setUint16(ev + 8, ESUCCESS, true); // error
          v.setUint8(ev + 10, v.getUint8(sub + 8)); // type
          for (let j = 11; j < 32; j++) v.setUint8(ev + j, 0);
        }
        v.setUint32(nevents, nsubs, true);
        return ESUCCESS;
      },
      sched_yield: () => ESUCCESS,
      proc_exit: (code) => {
        throw new WASIExit(code);
      },
    };
  }

  // start records the instance's memory and runs its _initialize export.
  start(instance) {
    this.memory = instance.exports.memory;
    instance.exports._initialize();
  }
}
