/* predict.c: the LM-Predictor C library in a few lines.
 *
 *   ./predict MODEL B S    prints what `lmrun MODEL -B B -S S --format json`
 *                          prints
 *
 * Build against an installed library:
 *   cc predict.c $(pkg-config --cflags --libs lmpredict) -o predict
 */
#include <lmpredict.h>

#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: predict MODEL.json BATCH SEQ_LEN\n");
    return 2;
  }
  lmp_error err;
  lmp_data *data = NULL;
  lmp_model *model = NULL;
  lmp_options *opts = lmp_options_new();
  lmp_result *res = NULL;
  int rc = 1;
  if (lmp_options_set(opts, "batch", argv[2], &err) < 0 ||
      lmp_options_set(opts, "seq-len", argv[3], &err) < 0 ||
      !(data = lmp_open(NULL, NULL, NULL, &err)) ||
      !(model = lmp_model_load(data, argv[1], &err)) ||
      !(res = lmp_predict(data, model, opts, &err))) {
    fprintf(stderr, "predict: %s", err.text);
    goto out;
  }
  char *json = lmp_result_json(res);
  fputs(json, stdout);
  lmp_free(json);
  rc = 0;
out:
  lmp_result_free(res);
  lmp_options_free(opts);
  lmp_model_free(model);
  lmp_close(data);
  return rc;
}
