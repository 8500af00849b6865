#!/usr/bin/python3
"""Tests of the Python package (python/rwkvc) over models compiled by rwkvc.

Run by ctest (test/python/CMakeLists.txt) as
  PYTHONPATH=python RWKVC=build/bin/rwkvc RWKVC_TEST_WORK=DIR \
      /usr/bin/python3 -m unittest -v test_rwkvc
It compiles the bundled examples/rwkvc-tiny.pth (byte-level RWKV-7) to a
shared library and an executable, and a second library (fp16 weights,
another model hash) through RWKV(checkpoint) and the cache.
"""

import copy
import os
import subprocess
import sys
import tempfile
import time
import unittest
import warnings

import numpy as np

import rwkvc
from rwkvc.compiler import parse_strategy, StrategyWarning

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CKPT = os.path.join(SRC, "examples", "rwkvc-tiny.pth")
SHARED = os.environ.get("RWKVC_SHARED_DIR", os.path.join(SRC, "..", "shared"))
WORK = os.environ.get("RWKVC_TEST_WORK") or tempfile.mkdtemp(prefix="rwkvc-py-")
LIB = os.path.join(WORK, "libtiny.so")
EXE = os.path.join(WORK, "tiny")

# GPT mode (forward_seq over the tokens) and RNN mode (forward_one per token)
# run the same recurrence with other summation orders: 1e-5 on logits of
# magnitude ~10, as the end-to-end suite bounds chunkings.
TOL = 1e-5


def setUpModule():
    os.makedirs(WORK, exist_ok=True)
    os.environ["RWKVC_CACHE_DIR"] = os.path.join(WORK, "cache")
    rwkvc.compile(CKPT, LIB)
    rwkvc.compile(CKPT, EXE, emit="exe")


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class ModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = rwkvc.RWKV(model=LIB, strategy="cpu fp32")

    def test_gpt_mode_equals_rnn_mode(self):
        m = self.model
        tokens = [84, 104, 101, 32, 112]
        whole, _ = m.forward(tokens, None)
        out, state = m.forward(tokens[:2], None)
        out, state = m.forward(tokens[2:3], state)
        split, state = m.forward(tokens[3:], state)
        np.testing.assert_allclose(split, whole, rtol=0, atol=TOL)
        state = None
        for t in tokens:
            rnn, state = m.forward([t], state)
        np.testing.assert_allclose(rnn, whole, rtol=0, atol=TOL)
        self.assertEqual(whole.shape, (256,))
        self.assertEqual(whole.dtype, np.float32)

    def test_full_output_is_every_position(self):
        m = self.model
        tokens = np.frombuffer(b"The quick", np.uint8)
        full, _ = m.forward(tokens, None, full_output=True)
        self.assertEqual(full.shape, (len(tokens), 256))
        state = None
        for i, t in enumerate(tokens):
            row, state = m.forward([int(t)], state)
            np.testing.assert_allclose(full[i], row, rtol=0, atol=TOL)

    def test_state_in_place_copy_save_load(self):
        m = self.model
        _, state = m.forward([1, 2, 3], None)
        branch = copy.deepcopy(state)
        other = state.copy()
        a, same = m.forward([4], state)
        self.assertIs(same, state)  # updated in place, as the package does
        b, _ = m.forward([4], branch)
        c, _ = m.forward([4], other)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        path = os.path.join(WORK, "py.state")
        state.save(path)
        loaded = m.load_state(path)
        np.testing.assert_array_equal(loaded.numpy(), state.numpy())
        d, _ = m.forward([5], loaded)
        e, _ = m.forward([5], state)
        np.testing.assert_array_equal(d, e)
        fresh = m.new_state()
        fresh.assign(state.numpy())
        np.testing.assert_array_equal(fresh.numpy(), state.numpy())
        fresh.reset()
        np.testing.assert_array_equal(fresh.numpy(), m.new_state().numpy())

    def test_state_file_of_the_executable(self):
        path = os.path.join(WORK, "exe.state")
        subprocess.run([EXE, "--tokens", "10,20,30", "--state-out", path],
                       check=True, capture_output=True)
        out, _ = self.model.forward([40], self.model.load_state(path))
        ref, _ = self.model.forward([10, 20, 30, 40], None)
        np.testing.assert_allclose(out, ref, rtol=0, atol=TOL)

    def test_logits_answer_torch_calls(self):
        out, _ = self.model.forward([65], None)
        self.assertIsInstance(out, np.ndarray)
        a = out.detach().cpu().numpy()
        self.assertIs(type(a), np.ndarray)
        np.testing.assert_array_equal(out.float(), a)
        self.assertEqual(int(np.argmax(out.clone())), int(np.argmax(a)))

    def test_torch_tensors_when_asked(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            self.skipTest("torch is not importable")
        m = rwkvc.RWKV(model=LIB, torch=True)
        out, _ = m.forward([65], None)
        self.assertEqual(type(out).__name__, "Tensor")

    def test_memory_stays_flat_over_a_long_stream(self):
        m = self.model
        with open(os.path.join(SRC, "docs", "runtime.md"), "rb") as f:
            text = f.read()
        doc = np.frombuffer((text * (100000 // len(text) + 1))[:100000],
                            np.uint8).astype(np.int32)
        chunk = 1000
        state = None
        t0 = time.perf_counter()
        for i in range(0, len(doc), chunk):
            out, state = m.forward(doc[i:i + chunk], state)
            if i == 10 * chunk:
                base = rss_kib()
        grown = rss_kib() - base
        print(f"\n100000 tokens in chunks of {chunk}: "
              f"{time.perf_counter() - t0:.2f} s, RSS grew {grown} KiB",
              file=sys.stderr)
        # Nothing is kept per call: the bound is allocator noise.
        self.assertLess(grown, 4096)
        self.assertTrue(np.isfinite(out).all())


class PipelineTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = rwkvc.RWKV(model=LIB)
        cls.pipeline = rwkvc.PIPELINE(cls.model, "bytes", seed=5)

    def executable(self, prompt, n, *args):
        out = subprocess.run([EXE, prompt, "-n", str(n)] + list(args),
                             check=True, capture_output=True).stdout
        return out.decode("utf-8", "replace")

    def test_generate_equals_the_executable(self):
        for seed in (1, 7):
            pieces = []
            text = self.pipeline.generate(
                "The ", token_count=60, args=rwkvc.PIPELINE_ARGS(seed=seed),
                callback=pieces.append)
            self.assertEqual(text, "".join(pieces))
            self.assertEqual(text, self.executable("The ", 60, "--seed",
                                                   str(seed)))
        args = rwkvc.PIPELINE_ARGS(temperature=0, alpha_frequency=0,
                                   alpha_presence=0, top_k=5, seed=0)
        self.assertEqual(
            self.pipeline.generate("In the", 40, args),
            self.executable("In the", 40, "--temperature", "0",
                            "--presence-penalty", "0",
                            "--frequency-penalty", "0", "--top-k", "5"))

    def test_generate_state_and_stops(self):
        p = self.pipeline
        state = self.model.new_state()
        args = rwkvc.PIPELINE_ARGS(seed=3, token_stop=[ord("\n")],
                                   token_ban=[ord("e")], chunk_len=2)
        text = p.generate("Some text", 200, args, state=state)
        self.assertNotIn("\n", text)
        self.assertNotIn("e", text)
        self.assertNotEqual(state.numpy().tolist(),
                            self.model.new_state().numpy().tolist())

    def test_encode_decode(self):
        p = self.pipeline
        ids = p.encode("héllo")
        self.assertEqual(ids, list("héllo".encode()))
        self.assertEqual(p.decode(ids), "héllo")
        self.assertEqual(p.decode(ids[:2]), "h\ufffd")
        self.assertEqual(rwkvc.PIPELINE(self.model).encode("ab"), [97, 98])

    def test_sample_logits(self):
        p = self.pipeline
        logits, _ = self.model.forward(p.encode("The"), None)
        before = logits.copy()
        best = int(np.argmax(logits))
        self.assertEqual(p.sample_logits(logits, temperature=0), best)
        self.assertEqual(p.sample_logits(logits, top_k=1), best)
        self.assertEqual(p.sample_logits(logits, top_p=0), best)
        np.testing.assert_array_equal(logits, before)  # not modified
        a = [rwkvc.PIPELINE(self.model, seed=9).sample_logits(logits)
             for _ in range(3)]
        self.assertEqual(a[0], a[1])
        draws = {p.sample_logits(logits, temperature=2.0, top_p=1.0)
                 for _ in range(50)}
        self.assertGreater(len(draws), 1)

    def test_vocabulary_must_be_the_compiled_one(self):
        with self.assertRaisesRegex(rwkvc.RwkvcError,
                                    "tokenizer is bytes.*--tokenizer=world"):
            rwkvc.PIPELINE(self.model, "rwkv_vocab_v20230424")
        with self.assertRaisesRegex(ValueError, "unknown vocabulary"):
            rwkvc.PIPELINE(self.model, "cl100k_base")
        json20b = os.path.join(SHARED, "tokenizers", "20B_tokenizer.json")
        if os.path.exists(json20b):
            with self.assertRaisesRegex(rwkvc.RwkvcError, "50277 tokens"):
                rwkvc.PIPELINE(self.model, json20b)


class ErrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = rwkvc.RWKV(model=LIB)

    def test_token_out_of_range(self):
        m = self.model
        _, state = m.forward([1, 2], None)
        before = state.numpy()
        for bad in ([256], [1, -1, 2], [1, 2, 3, 1000], [2**40],
                    np.array([3, 2**33])):
            with self.assertRaisesRegex(rwkvc.RwkvcArgumentError,
                                        "out of range"):
                m.forward(bad, state)
            with self.assertRaisesRegex(ValueError, "out of range"):
                m.forward(bad, state, full_output=True)
        np.testing.assert_array_equal(state.numpy(), before)  # untouched
        with self.assertRaises(rwkvc.RwkvcArgumentError):
            m.forward([], None)
        with self.assertRaises(TypeError):
            m.forward([1.5], None)
        with self.assertRaisesRegex(rwkvc.RwkvcArgumentError, "out of range"):
            rwkvc.PIPELINE(m).decode([300])

    def test_state_of_another_model(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StrategyWarning)
            other = rwkvc.RWKV(model=CKPT[:-len(".pth")], strategy="cpu fp16",
                               verbose=False)
        self.assertNotEqual(other.model_hash, self.model.model_hash)
        _, theirs = other.forward([1], None)
        with self.assertRaisesRegex(rwkvc.RwkvcMismatchError,
                                    "another model"):
            self.model.forward([2], theirs)
        path = os.path.join(WORK, "other.state")
        theirs.save(path)
        with self.assertRaisesRegex(rwkvc.RwkvcMismatchError,
                                    "belongs to another model"):
            self.model.load_state(path)
        with self.assertRaises(TypeError):
            self.model.forward([1], [np.zeros(3)])

    def test_missing_and_bad_files(self):
        with self.assertRaises(FileNotFoundError):
            rwkvc.RWKV(model=os.path.join(WORK, "libmissing.so"))
        bad = os.path.join(WORK, "libbad.so")
        with open(bad, "wb") as f:
            f.write(b"\x7fELF not really")
        with self.assertRaisesRegex(rwkvc.RwkvcError, "cannot load"):
            rwkvc.RWKV(model=bad)
        with self.assertRaisesRegex(rwkvc.RwkvcError, "state file"):
            self.model.load_state(os.path.join(WORK, "missing.state"))
        with self.assertRaises(rwkvc.CompileError):
            rwkvc.compile(os.path.join(SRC, "README.md"),
                          os.path.join(WORK, "libreadme.so"))

    def test_device_choice(self):
        # A CPU-only library: auto and cpu run it on the CPU, cuda is refused
        # with the runtime's message (the CUDA backend's own tests run on
        # the emulator in test/runtime, CudaRuntimeTest).
        self.assertEqual(self.model.device, "cpu")
        self.assertEqual(rwkvc.RWKV(model=LIB, device="cpu").device, "cpu")
        with self.assertRaisesRegex(rwkvc.RwkvcError, "no CUDA kernels"):
            rwkvc.RWKV(model=LIB, device="cuda")
        with self.assertRaisesRegex(ValueError, "auto, cpu or cuda"):
            rwkvc.RWKV(model=LIB, device="gpu")

    def test_out_of_memory_is_a_memory_error(self):
        # The runtime's RWKV_ERROR_MEMORY (its paths are tested on the fake
        # model and in test/e2e): a MemoryError carrying the message.
        from rwkvc import _lib
        e = _lib.error_for(7, "rwkv_state_eval: out of memory: ...")
        self.assertIsInstance(e, rwkvc.RwkvcMemoryError)
        self.assertIsInstance(e, MemoryError)
        self.assertEqual((e.code, str(e)),
                         (7, "rwkv_state_eval: out of memory: ..."))

    def test_bad_sampling_parameters(self):
        p = rwkvc.PIPELINE(self.model)
        with self.assertRaisesRegex(rwkvc.RwkvcArgumentError, "top-k"):
            p.generate("a", 3, rwkvc.PIPELINE_ARGS(top_k=-1))


class CompileTest(unittest.TestCase):
    def test_strategy_mapping(self):
        self.assertEqual(parse_strategy("cpu fp32"),
                         ({"weight_type": "f32"}, []))
        self.assertEqual(parse_strategy("cpu bf16")[0],
                         {"weight_type": "bf16"})
        opts, notes = parse_strategy("cuda fp16")
        self.assertEqual(opts, {"weight_type": "f16"})
        self.assertRegex(notes[0], "CPU only")
        opts, notes = parse_strategy("cuda fp16 *6 -> cpu fp32")
        self.assertEqual(opts, {"weight_type": "f16"})
        self.assertRegex(" ".join(notes), "layer placement")
        opts, notes = parse_strategy("cpu fp32i8")
        self.assertEqual(opts, {"weight_type": "f32"})
        self.assertRegex(notes[0], "int8")
        with self.assertRaises(ValueError):
            parse_strategy("fast please")

    def test_checkpoint_compiled_once_into_the_cache(self):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            a = rwkvc.RWKV(model=CKPT, strategy="cuda fp16", verbose=False)
        self.assertTrue(any(issubclass(x.category, StrategyWarning)
                            for x in w))
        self.assertTrue(a.library_path.startswith(os.environ["RWKVC_CACHE_DIR"]))
        t0 = time.perf_counter()
        b = rwkvc.RWKV(model=CKPT, strategy="cpu fp16", verbose=False)
        self.assertLess(time.perf_counter() - t0, 5.0)  # no recompilation
        self.assertEqual(a.library_path, b.library_path)


class ExamplesTest(unittest.TestCase):
    def run_example(self, *args):
        env = dict(os.environ, PYTHONPATH=os.path.join(SRC, "python"))
        return subprocess.run([sys.executable] + list(args), env=env,
                              check=True, capture_output=True, text=True,
                              errors="replace").stdout

    def test_streaming_generation(self):
        out = self.run_example(
            os.path.join(SRC, "examples", "python", "generate.py"), LIB,
            "The ", "--tokens", "30", "--seed", "1")
        self.assertTrue(out.startswith("The "))
        self.assertEqual(out[len("The "):].rstrip("\n"),
                         PipelineTest.executable(self, "The ", 30, "--seed",
                                                 "1").rstrip("\n"))

    def test_a_program_for_the_rwkv_package(self):
        out = self.run_example(os.path.join(SRC, "test", "python",
                                            "package_program.py"), LIB)
        self.assertTrue(out.rstrip().endswith("ok"))

    def test_long_document(self):
        out = self.run_example(
            os.path.join(SRC, "examples", "python", "long_document.py"), LIB,
            os.path.join(SRC, "docs", "runtime.md"), "--chunk", "512")
        self.assertRegex(out, r"perplexity \d+\.\d+")


if __name__ == "__main__":
    unittest.main()
