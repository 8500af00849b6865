//===- TokenizerBlob.cpp - The tokenizer symbols rwkvc emits, for tests ---===//
//
// Defines rwkv_tokenizer_blob and rwkv_tokenizer_blob_size (rwkv_abi.h) the
// way rwkvc does: the blob file TOKENIZER_BLOB_PATH included with .incbin,
// 8-byte aligned, in .rodata, the size a 64-bit integer after it.
//
//===----------------------------------------------------------------------===//

asm(".section .rodata\n"
    ".balign 8\n"
    ".globl rwkv_tokenizer_blob\n"
    ".type rwkv_tokenizer_blob, @object\n"
    "rwkv_tokenizer_blob:\n"
    ".incbin \"" TOKENIZER_BLOB_PATH "\"\n"
    "rwkv_tokenizer_blob_end:\n"
    ".size rwkv_tokenizer_blob, rwkv_tokenizer_blob_end - rwkv_tokenizer_blob\n"
    ".balign 8\n"
    ".globl rwkv_tokenizer_blob_size\n"
    ".type rwkv_tokenizer_blob_size, @object\n"
    "rwkv_tokenizer_blob_size:\n"
    ".quad rwkv_tokenizer_blob_end - rwkv_tokenizer_blob\n"
    ".size rwkv_tokenizer_blob_size, 8\n"
    ".text\n");
