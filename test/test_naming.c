/* test_naming.c: the stored-name rule and name validation. */
#include "testutil.h"
#include "gen.h"

static void test_naming_snake(void **state) {
  (void)state;
  struct {
    const char *in, *out;
  } cases[] = {
      {"LlamaRMSNorm", "llama_rms_norm"},
      {"SiLU", "silu"},
      {"GELUActivation", "gelu_activation"},
      {"Linear", "linear"},
      {"LlamaForCausalLM", "llama_for_causal_lm"},
      {"LlamaMLP", "llama_mlp"},
      {"LlamaSdpaAttention", "llama_sdpa_attention"},
      {"GPT2Attention", "gpt2_attention"},
      {"GPTNeoXLayer", "gpt_neox_layer"},
      {"Conv2d", "conv2d"},
      {"ReLU6", "relu6"},
      {"LeakyReLU", "leaky_relu"},
      {"SiLUAndMul", "silu_and_mul"},
      {"MixtralSparseMoeBlock", "mixtral_sparse_moe_block"},
      {"LoRALinear", "lora_linear"},
      {"T5LayerNorm", "t5_layer_norm"},
      {"Qwen2RMSNorm", "qwen2_rms_norm"},
      {"My_Module", "my_module"},
      {"ABC", "abc"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *s = naming_snake(cases[i].in);
    assert_string_equal(s, cases[i].out);
    free(s);
  }
}

static void test_naming_file_and_class(void **state) {
  (void)state;
  struct {
    const char *full, *file, *cls;
  } cases[] = {
      {"transformers.models.llama.modeling_llama.LlamaRMSNorm",
       "transformers_llama_rms_norm.c", "TransformersLlamaRMSNorm"},
      {"torch.nn.modules.activation.SiLU", "torch_silu.c", "TorchSiLU"},
      {"transformers.activations.GELUActivation",
       "transformers_gelu_activation.c", "TransformersGELUActivation"},
      {"torch.nn.modules.linear.Linear", "torch_linear.c", "TorchLinear"},
      {"flash_attn.modules.mha.MHA", "flash_attn_mha.c", "FlashAttnMHA"},
  };
  for (size_t i = 0; i < LM_ARRAY_LEN(cases); i++) {
    char *f = naming_file(cases[i].full), *c = naming_class(cases[i].full);
    assert_string_equal(f, cases[i].file);
    assert_string_equal(c, cases[i].cls);
    assert_true(naming_valid_file(f, NULL));
    assert_true(naming_valid_class(c, NULL));
    free(f);
    free(c);
  }
}

static void test_naming_validation(void **state) {
  (void)state;
  const char *why;
  const char *bad_files[] = {"../x.c", "a/b.c", "x.h", ".c", "X.c",
                             "a b.c", "a.b.c", "x.c\n", "", "x"};
  for (size_t i = 0; i < LM_ARRAY_LEN(bad_files); i++) {
    why = NULL;
    assert_false(naming_valid_file(bad_files[i], &why));
    assert_non_null(why);
  }
  assert_false(naming_valid_file("../x.c", &why));
  assert_contains(why, "no directory part");
  assert_true(naming_valid_file("torch_silu.c", NULL));

  const char *bad_classes[] = {"int", "return", "_Bool", "1abc", "a-b",
                               "", "lm_thing", "_Private", "a b", "Tab\t"};
  for (size_t i = 0; i < LM_ARRAY_LEN(bad_classes); i++) {
    why = NULL;
    assert_false(naming_valid_class(bad_classes[i], &why));
    assert_non_null(why);
  }
  assert_false(naming_valid_class("int", &why));
  assert_string_equal(why, "is a C keyword");
  assert_true(naming_valid_class("TorchSiLU", NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_naming_snake),
      cmocka_unit_test(test_naming_file_and_class),
      cmocka_unit_test(test_naming_validation),
  };
  return cmocka_run_group_tests_name("naming", tests, NULL, NULL);
}
