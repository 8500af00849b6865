/* Prints the rwkv_model_descriptor of the model object it is linked with,
 * read through runtime/rwkv_abi.h (abi-descriptor.test). */
#include "rwkv_abi.h"

#include <stdio.h>
#include <stdlib.h>

/* The allocation functions the model's code calls, which the runtime
 * defines; declared by rwkv_abi.h (never called here). */
void *_mlir_memref_to_llvm_alloc(size_t size) { return malloc(size); }
void _mlir_memref_to_llvm_free(void *ptr) { free(ptr); }

int main(void) {
  const rwkv_model_desc *d = &rwkv_model_descriptor;
  printf("abi_version %u backends %u entries %u\n", d->abi_version,
         d->backends, d->entries);
  printf("rwkv_version %s model_name %s\n", d->rwkv_version, d->model_name);
  printf("n_vocab %lld n_embd %lld n_layer %lld\n", (long long)d->n_vocab,
         (long long)d->n_embd, (long long)d->n_layer);
  printf("state_floats %lld weights_bytes %lld\n", (long long)d->state_floats,
         (long long)d->weights_bytes);
  printf("weights_embedded %d weights_file %s\n", d->weights_embedded,
         d->weights_file ? d->weights_file : "(none)");
  printf("n_slots %lld\n", (long long)d->n_slots);
  for (int64_t i = 0; i < d->n_slots; ++i)
    printf("slot %s offset %lld size %lld init %d init_weight_offset %lld\n",
           d->slots[i].name, (long long)d->slots[i].offset,
           (long long)d->slots[i].size, d->slots[i].init,
           (long long)d->slots[i].init_weight_offset);
  if (!d->cuda) {
    printf("cuda (none)\n");
    return 0;
  }
  const rwkv_cuda_program *p = d->cuda;
  printf("cuda n_images %d n_kernels %d n_steps %lld n_args %lld "
         "scratch_bytes_per_token %lld\n",
         p->n_images, p->n_kernels, (long long)p->n_steps,
         (long long)p->n_args, (long long)p->scratch_bytes_per_token);
  for (int i = 0; i < p->n_images; ++i)
    printf("image kind %d arch %d size %llu\n", p->images[i].kind,
           p->images[i].arch, (unsigned long long)p->images[i].size);
  printf("kernel 0 %s\n", p->kernel_names[0]);
  int loops = 0;
  for (int64_t i = 0; i < p->n_steps; ++i) {
    const rwkv_cuda_step *s = &p->steps[i];
    if (s->kind == RWKV_CUDA_LOOP)
      printf("loop %d at step %lld\n", s->count, (long long)i), ++loops;
    if (s->kind == RWKV_CUDA_LAUNCH &&
        (s->first_arg + s->n_args > p->n_args || s->kernel >= p->n_kernels))
      printf("step %lld out of the tables\n", (long long)i);
  }
  printf("loops %d\n", loops);
  return 0;
}
