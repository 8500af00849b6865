#!/usr/bin/python3
"""Checks that docs/dialect.md is true to the ODS.

1. Every op mnemonic defined in dialect/include/rwkv/RWKVOps.td is named in
   the document as `rwkv.<mnemonic>`.
2. Every ```mlir block of the document parses and verifies with rwkv-opt.

Usage: check_dialect_doc.py SOURCE_ROOT RWKV_OPT
"""
import re
import subprocess
import sys


def main():
    root, rwkv_opt = sys.argv[1], sys.argv[2]
    ods = open(f"{root}/dialect/include/rwkv/RWKVOps.td").read()
    doc = open(f"{root}/docs/dialect.md").read()
    mnemonics = re.findall(r'def \w+\s*:\s*RWKV_\w*Op<"(\w+)"', ods)
    if len(mnemonics) < 20:
        print(f"error: found only {len(mnemonics)} ops in the ODS")
        return 1
    failures = 0
    for m in mnemonics:
        if not re.search(r"rwkv\." + m + r"\b", doc):
            print(f"error: op rwkv.{m} of the ODS is not described in docs/dialect.md")
            failures += 1
    blocks = re.findall(r"```mlir\n(.*?)```", doc, re.S)
    for i, block in enumerate(blocks):
        r = subprocess.run([rwkv_opt, "-"], input=block, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"error: mlir block {i + 1} of docs/dialect.md does not verify:\n{r.stderr}")
            failures += 1
    print(f"{len(mnemonics)} ops, {len(blocks)} mlir blocks checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
