/* html.c: a report as one self-contained HTML page (--format html).
 *
 * Everything is inline: CSS, SVG charts drawn here, a little script (the
 * table's sorting, the hover tip, the explanation panel); nothing is
 * fetched. The page has the run's settings and summary, the memory
 * footprint against the GPU's capacity and, per phase shown: the roofline
 * (log-log, intensity against achieved FLOP/s, one roof per compute peak
 * with its ridge point, each operation a point whose area is its share
 * of the phase's time), the time by kind of operation (the module's class
 * for a module's own row, the operation's name for an atomic one), and
 * the table of operations, sortable, each row opening its explanation
 * (explain.c). Print CSS drops the interactive parts.
 */
#include "calib.h"
#include "runtime.h"

#include <math.h>
#include <string.h>

#ifndef LMP_VERSION
#define LMP_VERSION "0.0.0"
#endif

#define C_MEM "#2f6db5"  /* memory-bound points and bars */
#define C_COMP "#d9661f" /* compute-bound */
#define C_W "#2f6db5"    /* weights */
#define C_KV "#3c9a5f"   /* KV cache */
#define C_ACT "#c9a227"  /* activations */
#define C_NET "#7b4fa6"  /* communication over the interconnect */

/* Text with &, <, >, " and ' escaped. */
static void esc(Buf *b, const char *s) {
  for (; *s; s++)
    switch (*s) {
    case '&':
      buf_puts(b, "&amp;");
      break;
    case '<':
      buf_puts(b, "&lt;");
      break;
    case '>':
      buf_puts(b, "&gt;");
      break;
    case '"':
      buf_puts(b, "&quot;");
      break;
    case '\'':
      buf_puts(b, "&#39;");
      break;
    default:
      buf_putc(b, *s);
    }
}

/* A JSON string that is safe inside <script>: "</" never appears. */
static void js_str(Buf *b, const char *s) {
  buf_putc(b, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      buf_printf(b, "\\%c", *p);
    else if (*p == '\n')
      buf_puts(b, "\\n");
    else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
      buf_printf(b, "\\u%04x", *p);
    else
      buf_putc(b, (char)*p);
  }
  buf_putc(b, '"');
}

static void si(Buf *b, double v, const char *unit) {
  char s[48];
  si_format(v, unit, s, sizeof(s));
  buf_puts(b, s);
}

static void tm(Buf *b, double v) {
  char s[48];
  time_format(v, s, sizeof(s));
  buf_puts(b, s);
}

static void rawnum(Buf *b, double v) {
  char n[64];
  report_number(v, n, sizeof(n));
  buf_puts(b, strcmp(n, "null") == 0 ? "" : n);
}

/* 10^k as a tick label: 0.01, 0.1, 1, 10, 100, 1k, ... 1P */
static void decade_label(Buf *b, int k, const char *unit) {
  if (k < 0) {
    buf_printf(b, "%.*f", -k, pow(10, k));
    buf_puts(b, unit);
    return;
  }
  static const char *pre[] = {"", "k", "M", "G", "T", "P", "E"};
  int p = k / 3;
  if (p > 6)
    p = 6;
  buf_printf(b, "%.0f %s%s", pow(10, k - 3 * p), pre[p], unit);
}

/* ------------------------------------------------------------- styles */

static const char css[] =
    ":root{--fg:#1a202c;--mut:#5a6473;--bg:#fff;--line:#d8dde5;"
    "--mem:" C_MEM ";--comp:" C_COMP "}\n"
    "*{box-sizing:border-box}\n"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,"
    "'DejaVu Sans',sans-serif;color:var(--fg);background:var(--bg);"
    "margin:0 auto;padding:20px 28px 40px;max-width:1400px}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;"
    "border-bottom:2px solid var(--line);padding-bottom:4px}"
    "h3{font-size:15px;margin:4px 0 6px}\n"
    ".sub{color:var(--mut);margin:0 0 12px}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}\n"
    ".card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;"
    "min-width:150px;flex:1}\n"
    ".card .k{color:var(--mut);font-size:12px;text-transform:uppercase;"
    "letter-spacing:.04em}.card .v{font-size:22px;font-weight:600}"
    ".card .n{color:var(--mut);font-size:12px}\n"
    ".grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr)"
    ");"
    "gap:18px;align-items:start}\n"
    "figure{margin:0;border:1px solid var(--line);border-radius:8px;"
    "padding:10px}figcaption{color:var(--mut);font-size:12px;margin-top:4px}\n"
    "svg{display:block;width:100%;height:auto;font-family:inherit}\n"
    "svg text{fill:var(--fg);font-size:11px}svg .ax{fill:var(--mut)}\n"
    "svg .grid line{stroke:#eceff3}svg .pt{stroke:#fff;stroke-width:1;"
    "fill-opacity:.8;cursor:pointer}svg .pt:hover,svg .pt.hl{stroke:#000;"
    "stroke-width:2;fill-opacity:1}\n"
    ".legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;"
    "color:var(--mut);margin-top:4px}.sw{display:inline-block;width:10px;"
    "height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}\n"
    ".tablewrap{overflow-x:auto;margin-top:14px}\n"
    "table{border-collapse:collapse;width:100%;font-size:12.5px}\n"
    "th,td{padding:4px 8px;border-bottom:1px solid var(--line);"
    "white-space:nowrap}td.n,th.n{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    "th{position:sticky;top:0;background:#f5f7fa;cursor:pointer;"
    "user-select:none}th:hover{background:#e9edf3}\n"
    "th[aria-sort=ascending]::after{content:' \\25B2'}"
    "th[aria-sort=descending]::after{content:' \\25BC'}\n"
    "tbody tr{cursor:pointer}tbody tr:hover,tbody tr.hl{background:#eef4fb}\n"
    "tr.total td{font-weight:600;border-top:2px solid var(--line);"
    "cursor:default}\n"
    ".b-memory{color:var(--mem)}.b-compute{color:var(--comp)}\n"
    ".bar{display:inline-block;height:8px;background:var(--mem);"
    "border-radius:2px;vertical-align:middle;margin-right:4px}\n"
    ".note{color:var(--mut);font-size:12px}\n"
    "#tip{position:fixed;pointer-events:none;background:#1a202c;color:#fff;"
    "padding:6px 9px;border-radius:5px;font-size:12px;white-space:pre;"
    "display:none;z-index:10;box-shadow:0 2px 8px rgba(0,0,0,.3)}\n"
    "#explain{position:fixed;top:0;right:0;bottom:0;width:min(820px,96vw);"
    "background:#fff;border-left:1px solid var(--line);"
    "box-shadow:-4px 0 18px rgba(0,0,0,.15);padding:14px 18px;"
    "overflow:auto;z-index:20}\n"
    "#explain[hidden]{display:none}#explain pre{font-size:12px;"
    "white-space:pre-wrap;word-break:break-word}\n"
    "#explain button{float:right;font:inherit;padding:2px "
    "10px;cursor:pointer}\n"
    "footer{margin-top:30px;color:var(--mut);font-size:12px}\n"
    "pre{overflow-x:auto}\n"
    "@media print{body{padding:0;max-width:none;font-size:10pt}"
    "#tip,#explain,.noprint{display:none!important}"
    "figure,.card{break-inside:avoid}section.phase{break-before:page}"
    ".grid{grid-template-columns:1fr 1fr}th{position:static}"
    "*{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "table{font-size:7pt}th,td{padding:1px 3px}"
    ".tablewrap{overflow:visible}}\n"
    "@page{size:A4 landscape;margin:10mm}\n";

/* -------------------------------------------------------------- script */

static const char script[] =
    "(function(){\n"
    "var X=JSON.parse(document.getElementById('explain-data').textContent);\n"
    "var tip=document.getElementById('tip');\n"
    "function hl(path,on){document.querySelectorAll('[data-path]').forEach("
    "function(e){if(e.getAttribute('data-path')===path)"
    "e.classList.toggle('hl',on);});}\n"
    "document.querySelectorAll('[data-tip]').forEach(function(e){\n"
    " e.addEventListener('mousemove',function(ev){tip.textContent="
    "e.getAttribute('data-tip');tip.style.display='block';\n"
    "  var x=ev.clientX+14,y=ev.clientY+14;if(x+tip.offsetWidth>innerWidth)"
    "x=ev.clientX-tip.offsetWidth-10;if(y+tip.offsetHeight>innerHeight)"
    "y=ev.clientY-tip.offsetHeight-10;tip.style.left=x+'px';"
    "tip.style.top=y+'px';});\n"
    " e.addEventListener('mouseenter',function(){var p=e.getAttribute("
    "'data-path');if(p)hl(p,true);});\n"
    " e.addEventListener('mouseleave',function(){tip.style.display='none';"
    "var p=e.getAttribute('data-path');if(p)hl(p,false);});});\n"
    "var panel=document.getElementById('explain'),"
    "pre=document.getElementById('explain-text');\n"
    "function open(key){if(!(key in X))return;pre.textContent=X[key];"
    "panel.hidden=false;panel.scrollTop=0;}\n"
    "document.getElementById('explain-close').addEventListener('click',"
    "function(){panel.hidden=true;});\n"
    "document.addEventListener('keydown',function(ev){if(ev.key==='Escape')"
    "panel.hidden=true;});\n"
    "document.querySelectorAll('[data-explain]').forEach(function(e){\n"
    " e.addEventListener('click',function(){open(e.getAttribute("
    "'data-explain'));});\n"
    " e.addEventListener('keydown',function(ev){if(ev.key==='Enter')"
    "open(e.getAttribute('data-explain'));});});\n"
    "document.querySelectorAll('table.ops').forEach(function(t){\n"
    " var body=t.tBodies[0];\n"
    " t.querySelectorAll('th').forEach(function(th,i){th.addEventListener("
    "'click',function(){\n"
    "  var asc=th.getAttribute('aria-sort')!=='ascending';\n"
    "  t.querySelectorAll('th').forEach(function(o){o.removeAttribute("
    "'aria-sort');});\n"
    "  th.setAttribute('aria-sort',asc?'ascending':'descending');\n"
    "  var num=th.classList.contains('n');\n"
    "  var rows=Array.prototype.slice.call(body.rows);\n"
    "  rows.sort(function(a,b){var x=a.cells[i],y=b.cells[i];\n"
    "   var u=num?parseFloat(x.getAttribute('data-v')):x.textContent,"
    "v=num?parseFloat(y.getAttribute('data-v')):y.textContent;\n"
    "   if(num){if(isNaN(u))u=-Infinity;if(isNaN(v))v=-Infinity;"
    "return asc?u-v:v-u;}\n"
    "   return asc?(u<v?-1:u>v?1:0):(u<v?1:u>v?-1:0);});\n"
    "  rows.forEach(function(r){body.appendChild(r);});});});});\n"
    "document.body.setAttribute('data-ready','1');\n"
    "})();\n";

/* ------------------------------------------------------------ roofline */

typedef struct Axis {
  double lo, hi; /* log10 of the ends: whole decades */
  double p0, p1; /* pixels of the ends */
} Axis;

static double ax_px(const Axis *a, double v) {
  return a->p0 + (log10(v) - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* The phase's times: the calibrated prediction, or the roofline bound
 * with --roofline. */
static const double *ptimes(const PhaseResult *ph) {
  return ph->pred ? ph->pred : ph->time;
}
static double ptotal(const PhaseResult *ph) {
  return ph->pred ? ph->pred_total : ph->total_time;
}

static const char *kind_of(const Row *w, const ModuleDef *md) {
  return md->nops > 0 ? w->op : md->short_name;
}

static void roofline(Buf *b, const Report *r, const PhaseResult *ph, int pi) {
  const Plan *p = ph->plan;
  double bw = r->gpu->bandwidth;
  double peaks[3] = {r->peaks.p16, r->peaks.p8, r->peaks.p4};
  const char *pnames[3] = {"FP16/BF16", r->peaks.p8_name, "FP4"};
  int npeaks = r->peaks.p8 > 0 ? 2 : 1;
  if (r->peaks.p4 > 0) { /* Blackwell: the FP4 ridge too */
    peaks[npeaks] = r->peaks.p4;
    pnames[npeaks++] = "FP4";
  }
  double pmax = peaks[0] > peaks[npeaks - 1] ? peaks[0] : peaks[npeaks - 1];
  double xmin = INFINITY, xmax = 0, ymin = INFINITY;
  for (int k = 0; k < p->nrows; k++) {
    const double *v = ph->vals->row[k];
    double bytes = metric_bytes(v);
    if (v[M_FLOPS] <= 0 || bytes <= 0 || ptimes(ph)[k] <= 0)
      continue;
    double ai = v[M_FLOPS] / bytes, perf = v[M_FLOPS] / ptimes(ph)[k];
    xmin = fmin(xmin, ai);
    xmax = fmax(xmax, ai);
    ymin = fmin(ymin, perf);
  }
  for (int i = 0; i < npeaks; i++)
    xmax = fmax(xmax, peaks[i] / bw);
  if (!isfinite(xmin)) {
    xmin = 0.1;
    ymin = pmax / 1e4;
  }
  const double W = 640, H = 420, L = 74, R = 16, T = 16, B = 52;
  Axis ax = {floor(log10(xmin)), ceil(log10(xmax * 3)), L, W - R};
  Axis ay = {floor(log10(ymin)), ceil(log10(pmax * 1.5)), H - B, T};
  if (ax.hi - ax.lo < 2)
    ax.lo = ax.hi - 2;
  if (ay.hi - ay.lo < 2)
    ay.lo = ay.hi - 2;
  buf_printf(b,
             "<figure><h3>Roofline</h3><svg viewBox=\"0 0 %.0f %.0f\" "
             "role=\"img\" aria-label=\"roofline of the %s phase\">\n",
             W, H, ph->name);
  buf_printf(b,
             "<defs><clipPath id=\"clip-%d\"><rect x=\"%.0f\" y=\"%.0f\" "
             "width=\"%.0f\" height=\"%.0f\"/></clipPath></defs>\n",
             pi, L, T, W - L - R, H - T - B);
  /* grid and ticks */
  buf_puts(b, "<g class=\"grid\">");
  for (int k = (int)ax.lo; k <= (int)ax.hi; k++) {
    double x = ax_px(&ax, pow(10, k));
    buf_printf(b, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>", x,
               T, x, H - B);
  }
  for (int k = (int)ay.lo; k <= (int)ay.hi; k++) {
    double y = ax_px(&ay, pow(10, k));
    buf_printf(b, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>", L,
               y, W - R, y);
  }
  buf_puts(b, "</g>\n");
  buf_printf(b,
             "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
             "fill=\"none\" stroke=\"#9aa3af\"/>\n",
             L, T, W - L - R, H - T - B);
  for (int k = (int)ax.lo; k <= (int)ax.hi; k++) {
    buf_printf(b,
               "<text class=\"ax\" x=\"%.1f\" y=\"%.0f\" "
               "text-anchor=\"middle\">",
               ax_px(&ax, pow(10, k)), H - B + 16);
    decade_label(b, k, "");
    buf_puts(b, "</text>");
  }
  for (int k = (int)ay.lo; k <= (int)ay.hi; k++) {
    buf_printf(b,
               "<text class=\"ax\" x=\"%.0f\" y=\"%.1f\" "
               "text-anchor=\"end\">",
               L - 6, ax_px(&ay, pow(10, k)) + 4);
    decade_label(b, k, "");
    buf_puts(b, "</text>");
  }
  buf_printf(b,
             "\n<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">"
             "arithmetic intensity (FLOP/byte, log scale)</text>\n",
             (L + W - R) / 2, H - 12);
  buf_printf(b,
             "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" "
             "transform=\"rotate(-90 16 %.0f)\">achieved performance "
             "(FLOP/s, log scale)</text>\n",
             (T + H - B) / 2, (T + H - B) / 2);
  /* roofs: bandwidth slope up to each ridge, then the flat peak */
  buf_printf(b, "<g clip-path=\"url(#clip-%d)\">\n", pi);
  for (int i = 0; i < npeaks; i++) {
    double ridge = peaks[i] / bw;
    double x0 = pow(10, ax.lo), x1 = pow(10, ax.hi);
    const char *dash = i ? " stroke-dasharray=\"6 4\"" : "";
    buf_printf(b,
               "<polyline fill=\"none\" stroke=\"#111\" "
               "stroke-width=\"1.6\"%s points=\"%.1f,%.1f %.1f,%.1f "
               "%.1f,%.1f\"/>\n",
               dash, ax_px(&ax, x0), ax_px(&ay, x0 * bw), ax_px(&ax, ridge),
               ax_px(&ay, peaks[i]), ax_px(&ax, x1), ax_px(&ay, peaks[i]));
    buf_printf(b,
               "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.1f\" "
               "stroke=\"#888\" stroke-dasharray=\"3 3\"/>\n",
               ax_px(&ax, ridge), H - B, ax_px(&ax, ridge),
               ax_px(&ay, peaks[i]));
    buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s peak ",
               ax_px(&ax, ridge) - 4, ax_px(&ay, peaks[i]) - 5, pnames[i]);
    si(b, peaks[i], strcmp(pnames[i], "INT8") == 0 ? "OP/s" : "FLOP/s");
    buf_printf(b,
               "</text><text class=\"ax\" x=\"%.1f\" y=\"%.0f\">ridge "
               "%.0f FLOP/B</text>\n",
               ax_px(&ax, ridge) + 4, H - B - 6 - 14.0 * i, ridge);
  }
  {
    /* label the bandwidth slope near its lower left */
    double xa = peaks[0] / bw / pow(10, 1.6);
    double ya = xa * bw;
    if (ya < pow(10, ay.lo))
      xa = pow(10, ay.lo + 0.3) / bw, ya = xa * bw;
    double ang = -atan2(ax_px(&ay, ya) - ax_px(&ay, ya * 10),
                        ax_px(&ax, xa * 10) - ax_px(&ax, xa)) *
                 180 / 3.14159265358979323846;
    buf_printf(b,
               "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(%.1f "
               "%.1f %.1f)\">HBM ",
               ax_px(&ax, xa), ax_px(&ay, ya) - 6, ang, ax_px(&ax, xa),
               ax_px(&ay, ya) - 6);
    si(b, bw, "B/s");
    buf_puts(b, "</text>\n");
  }
  /* operations, largest first so small ones stay on top */
  int *order = xcalloc((size_t)p->nrows + 1, sizeof(int));
  for (int k = 0; k < p->nrows; k++)
    order[k] = k;
  for (int i = 1; i < p->nrows; i++)
    for (int j = i;
         j > 0 && p->rows[order[j]].count * ptimes(ph)[order[j]] >
                      p->rows[order[j - 1]].count * ptimes(ph)[order[j - 1]];
         j--) {
      int t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  Buf skipped;
  buf_init(&skipped);
  for (int i = 0; i < p->nrows; i++) {
    int k = order[i];
    const Row *w = &p->rows[k];
    const double *v = ph->vals->row[k];
    double bytes = metric_bytes(v);
    if (ph->vals->off && ph->vals->off[k])
      continue; /* runs in the other phase (MLA, Mamba) */
    if (v[M_FLOPS] <= 0 || bytes <= 0 || ptimes(ph)[k] <= 0) {
      buf_printf(&skipped, "%s%s", skipped.len ? ", " : "", w->path);
      continue;
    }
    double ai = v[M_FLOPS] / bytes, perf = v[M_FLOPS] / ptimes(ph)[k];
    double share = ptotal(ph) > 0 ? w->count * ptimes(ph)[k] / ptotal(ph) : 0;
    double rad = 3 + 22 * sqrt(share);
    buf_printf(b,
               "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" "
               "fill=\"%s\" data-path=\"",
               ax_px(&ax, ai), ax_px(&ay, perf), rad,
               ph->bound[k] == BOUND_COMPUTE ? C_COMP : C_MEM);
    esc(b, w->path);
    buf_printf(b, "\" data-explain=\"%s/", ph->name);
    esc(b, w->path);
    buf_puts(b, "\" data-tip=\"");
    Buf t;
    buf_init(&t);
    buf_printf(&t, "%s\n%s bound at %s; x%g in the model\nFLOPs ", w->path,
               ph->bound[k] == BOUND_COMPUTE ? "compute" : "memory",
               ph->peak[k], w->count);
    si(&t, v[M_FLOPS], "");
    buf_puts(&t, ", bytes ");
    si(&t, bytes, "B");
    buf_printf(&t, "\nintensity %.3g FLOP/B, achieved ", ai);
    si(&t, perf, "FLOP/s");
    buf_puts(&t, "\ntime ");
    tm(&t, ptimes(ph)[k]);
    buf_puts(&t, " each, ");
    tm(&t, w->count * ptimes(ph)[k]);
    buf_printf(&t, " in all (%.1f%%)\nclick for where it comes from",
               share * 100);
    esc(b, buf_str(&t));
    buf_free(&t);
    buf_puts(b, "\"/>\n");
  }
  free(order);
  buf_puts(b, "</g></svg>\n<div class=\"legend\"><span><span class=\"sw\" "
              "style=\"background:" C_MEM "\"></span>memory bound</span>"
              "<span><span class=\"sw\" style=\"background:" C_COMP
              "\"></span>compute bound</span><span>solid roof: FP16/BF16");
  if (npeaks > 1)
    buf_printf(b, "; dashed: %s", pnames[1]);
  buf_puts(b, "</span><span>area: share of the phase's time</span></div>\n");
  buf_puts(b, "<figcaption>Each operation at its arithmetic intensity "
              "(FLOPs / bytes of HBM traffic) and achieved performance "
              "(FLOPs / time: ");
  buf_puts(b, ph->pred ? "the calibrated prediction, so an operation sits "
                         "below the roof by what the kernels achieve, or "
                         "above it when its kernel does less than counted: "
                         "flash attention skips the masked tiles"
                       : "the roofline bound, so every operation sits on "
                         "the roof");
  buf_puts(b, "); hover for values, click for the derivation.");
  if (ph->ncomm > 0 || ph->sends > 0)
    buf_puts(b, " Communication (collectives, pipeline sends) does no "
                "FLOPs and moves no HBM bytes, so it has no place on this "
                "roofline: its time is in the time by kind, its rows in the "
                "table.");
  if (skipped.len) {
    buf_puts(b, " Not plotted (no FLOPs or no bytes): ");
    esc(b, buf_str(&skipped));
    buf_putc(b, '.');
  }
  buf_puts(b, "</figcaption></figure>\n");
  buf_free(&skipped);
}

/* --------------------------------------------------- time by kind */

typedef struct Kind {
  const char *name;
  double t[3]; /* memory-bound, compute-bound, interconnect seconds */
} Kind;

static const char *const kind_color[3] = {C_MEM, C_COMP, C_NET};
static const char *const kind_bound[3] = {"memory bound", "compute bound",
                                          "interconnect"};

/* Add t seconds of name, bound c (0 memory, 1 compute, 2 interconnect). */
static int kind_add(Kind *k, int nk, const char *name, int c, double t) {
  int i = 0;
  while (i < nk && strcmp(k[i].name, name) != 0)
    i++;
  if (i == nk)
    k[nk++].name = name;
  k[i].t[c] += t;
  return nk;
}

/* The communication of a phase (parallelism): every collective and the
 * pipeline's sends, count x time; 0 on one GPU. */
static double comm_total(const PhaseResult *ph) {
  double t = 0;
  for (int c = 0; c < ph->ncomm; c++)
    t += ph->comm[c].count * ph->comm_time[c];
  return t + ph->sends * ph->send_time;
}

static void breakdown(Buf *b, const PhaseResult *ph) {
  const Plan *p = ph->plan;
  /* one kind per row at most, plus one per collective and the sends */
  Kind *k = xcalloc((size_t)p->nrows + (size_t)ph->ncomm + 2, sizeof(Kind));
  int nk = 0;
  for (int r = 0; r < p->nrows; r++) {
    const Row *w = &p->rows[r];
    if (ph->vals->off && ph->vals->off[r])
      continue; /* runs in the other phase (MLA, Mamba) */
    const char *name = kind_of(w, p->slots[w->slot].layer->mod->def);
    nk = kind_add(k, nk, name, ph->bound[r] == BOUND_COMPUTE,
                  w->count * ptimes(ph)[r]);
  }
  /* communication: the collectives by kind, the pipeline's sends */
  char (*cname)[40] = xcalloc((size_t)ph->ncomm + 2, sizeof(*cname));
  for (int c = 0; c < ph->ncomm; c++) {
    snprintf(cname[c], sizeof(cname[c]), "comm.%s",
             coll_name[ph->comm[c].kind]);
    nk = kind_add(k, nk, cname[c], 2, ph->comm[c].count * ph->comm_time[c]);
  }
  if (ph->sends > 0 && ph->send_time > 0)
    nk = kind_add(k, nk, "comm.send", 2, ph->sends * ph->send_time);
  double comm = comm_total(ph), all = ptotal(ph) + comm;
  for (int i = 1; i < nk; i++)
    for (int j = i; j > 0 && k[j].t[0] + k[j].t[1] + k[j].t[2] >
                                 k[j - 1].t[0] + k[j - 1].t[1] + k[j - 1].t[2];
         j--) {
      Kind t = k[j];
      k[j] = k[j - 1];
      k[j - 1] = t;
    }
  double tmax = nk ? k[0].t[0] + k[0].t[1] + k[0].t[2] : 0;
  const double W = 640, L = 150, R = 150, rowh = 24, T = 8;
  double H = T + rowh * nk + 44;
  buf_printf(b,
             "<figure><h3>Time by kind of operation</h3><svg viewBox=\"0 0 "
             "%.0f %.0f\" role=\"img\" aria-label=\"time by kind of "
             "operation, %s\">\n",
             W, H, ph->name);
  double scale = tmax > 0 ? (W - L - R) / tmax : 0;
  for (int i = 0; i < nk; i++) {
    double y = T + rowh * i, x = L;
    double tot = k[i].t[0] + k[i].t[1] + k[i].t[2];
    buf_printf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", L - 8,
               y + 15);
    esc(b, k[i].name);
    buf_puts(b, "</text>");
    for (int c = 0; c < 3; c++) {
      if (k[i].t[c] <= 0)
        continue;
      double wpx = k[i].t[c] * scale;
      buf_printf(b,
                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                 "height=\"%.0f\" fill=\"%s\" data-kind=\"",
                 x, y + 3, wpx < 0.5 ? 0.5 : wpx, rowh - 6, kind_color[c]);
      esc(b, k[i].name);
      buf_puts(b, "\" data-tip=\"");
      Buf t;
      buf_init(&t);
      buf_printf(&t, "%s, %s: ", k[i].name, kind_bound[c]);
      tm(&t, k[i].t[c]);
      esc(b, buf_str(&t));
      buf_free(&t);
      buf_puts(b, "\"/>");
      x += wpx;
    }
    buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", x + 6, y + 15);
    tm(b, tot);
    buf_printf(b, " (%.1f%%)</text>\n", all > 0 ? tot / all * 100 : 0);
  }
  /* time axis: 0 and the largest bar */
  double ya = T + rowh * nk + 4;
  buf_printf(b,
             "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
             "stroke=\"#9aa3af\"/>",
             L, ya, W - R, ya);
  buf_printf(b,
             "<text class=\"ax\" x=\"%.0f\" y=\"%.1f\" "
             "text-anchor=\"middle\">0</text>",
             L, ya + 14);
  buf_printf(b,
             "<text class=\"ax\" x=\"%.0f\" y=\"%.1f\" "
             "text-anchor=\"middle\">",
             W - R, ya + 14);
  tm(b, tmax);
  buf_printf(b,
             "</text><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"middle\">"
             "time in the phase (count x time per instance)</text>\n",
             (L + W - R) / 2, ya + 32);
  buf_puts(b, "</svg><div class=\"legend\"><span><span class=\"sw\" "
              "style=\"background:" C_MEM "\"></span>memory bound</span>"
              "<span><span class=\"sw\" style=\"background:" C_COMP
              "\"></span>compute bound</span>");
  if (comm > 0)
    buf_puts(b, "<span><span class=\"sw\" style=\"background:" C_NET
                "\"></span>interconnect (communication)</span>");
  buf_puts(b, "</div><figcaption>Kind: the module's class for a module's own "
              "row, the operation's name for an atomic operation");
  if (comm > 0) {
    buf_puts(b, ph->pred
                    ? ", comm.<i>collective</i> for the communication "
                      "parallelism adds (measured times of NCCL or of the "
                      "engine's own all-reduce kernel, calibration/"
                      "collectives.json and custom_all_reduce.json, where "
                      "the GPU has them, "
                      "else latency x steps + bytes x factor / link "
                      "bandwidth; count x time). Total "
                    : ", comm.<i>collective</i> for the communication "
                      "parallelism adds (latency x steps + bytes x factor / "
                      "link bandwidth, count x time). Total ");
    tm(b, all);
    buf_puts(b, ": operations ");
    tm(b, ptotal(ph));
    buf_puts(b, " + communication ");
    tm(b, comm);
    buf_puts(b, ", every layer on its tensor-parallel shard; the phase's "
                "latency ");
    tm(b, ph->latency);
    buf_puts(b, " (pipeline stages in sequence; with microbatches, the "
                "slowest stage once more per further microbatch).");
  } else {
    buf_puts(b, ". Total ");
    tm(b, ptotal(ph));
    buf_putc(b, '.');
  }
  buf_puts(b, "</figcaption></figure>\n");
  free(cname);
  free(k);
}

/* ------------------------------------------------------------- memory */

static void footprint(Buf *b, const Report *r) {
  const Footprint *f = &r->summary->mem;
  const double W = 960, L = 16, R = 16, T = 30, bh = 34;
  double H = T + bh + 50;
  double full = fmax(f->capacity, f->total) * 1.04;
  double scale = (W - L - R) / full;
  struct {
    const char *name, *color;
    double v;
  } part[3] = {{"weights", C_W, f->weights},
               {"KV cache", C_KV, f->kv_cache},
               {"activations", C_ACT, f->act}};
  buf_printf(b,
             "<figure><svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
             "aria-label=\"memory footprint\">\n",
             W, H);
  buf_printf(b,
             "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
             "fill=\"#f1f3f6\"/>\n",
             L, T, f->capacity * scale, bh);
  double x = L;
  for (int i = 0; i < 3; i++) {
    double w = part[i].v * scale;
    buf_printf(b,
               "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
               "fill=\"%s\" data-tip=\"%s: ",
               x, T, w, bh, part[i].color, part[i].name);
    si(b, part[i].v, "B");
    buf_printf(b, " (%.2f GiB)\"/>\n", part[i].v / 1073741824.0);
    if (w > 90) {
      buf_printf(b,
                 "<text x=\"%.1f\" y=\"%.0f\" fill=\"#fff\" "
                 "style=\"fill:#fff\">%s ",
                 x + 6, T + 21, part[i].name);
      si(b, part[i].v, "B");
      buf_puts(b, "</text>\n");
    }
    x += w;
  }
  double cx = L + f->capacity * scale;
  buf_printf(b,
             "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
             "stroke=\"#c53030\" stroke-width=\"2\"/>",
             cx, T - 8, cx, T + bh + 8);
  buf_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"end\">capacity ",
             cx - 4, T - 12);
  si(b, f->capacity, "B");
  buf_printf(b, " (%g GiB)</text>\n", f->capacity / 1073741824.0);
  /* bytes axis */
  for (int i = 0; i <= 4; i++) {
    double v = full / 1.04 * i / 4;
    buf_printf(b,
               "<text class=\"ax\" x=\"%.1f\" y=\"%.0f\" "
               "text-anchor=\"%s\">",
               L + v * scale, T + bh + 18,
               i == 0   ? "start"
               : i == 4 ? "end"
                        : "middle");
    si(b, v, "B");
    buf_puts(b, "</text>");
  }
  buf_printf(b,
             "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">memory "
             "(bytes; 1 GB = 10^9 B)</text>\n",
             W / 2, T + bh + 40);
  buf_puts(b, "</svg><div class=\"legend\">");
  for (int i = 0; i < 3; i++) {
    buf_printf(b, "<span><span class=\"sw\" style=\"background:%s\"></span>%s ",
               part[i].color, part[i].name);
    si(b, part[i].v, "B");
    buf_puts(b, "</span>");
  }
  buf_puts(b, "</div><figcaption>Weights: every parameter held "
              "(param_bytes). KV cache: after S tokens (kv_cache_bytes). "
              "Activations: the largest read + write of one operation, over "
              "prefill and decode. Total ");
  si(b, f->total, "B");
  buf_printf(b, " of ");
  si(b, f->capacity, "B");
  buf_printf(b, ": %s.", f->fits ? "fits" : "does NOT fit");
  if (f->max_batch > 0)
    buf_printf(b, " Largest batch at sequence %g: %s%.0f.", r->seq_len,
               f->max_capped ? "at least " : "", f->max_batch);
  buf_puts(b, "</figcaption></figure>\n");
}

/* -------------------------------------------------------------- table */

static void th(Buf *b, const char *name, bool numeric, const char *title) {
  buf_printf(b, "<th%s title=\"%s\">%s</th>", numeric ? " class=\"n\"" : "",
             title, name);
}

static void td_num(Buf *b, double v, const char *text) {
  buf_puts(b, "<td class=\"n\" data-v=\"");
  rawnum(b, v);
  buf_printf(b, "\">%s</td>", text);
}

static void td_si(Buf *b, double v, const char *unit) {
  char s[48];
  si_format(v, unit, s, sizeof(s));
  td_num(b, v, s);
}

static void td_time(Buf *b, double v) {
  char s[48];
  time_format(v, s, sizeof(s));
  td_num(b, v, s);
}

/* A communication row (parallelism): bytes over the interconnect, its
 * time; no FLOPs or HBM traffic, no share (the pipeline overlaps). */
static void comm_one_html(Buf *b, const PhaseResult *ph, const char *path,
                          const char *op, double count, double bytes,
                          double time, double roof) {
  buf_puts(b, "<tr data-path=\"");
  esc(b, path);
  buf_puts(b, "\"><td>");
  esc(b, path);
  buf_printf(b, "</td><td>comm.%s</td>", op);
  char c[32];
  snprintf(c, sizeof(c), "%g", count);
  td_num(b, count, c);
  for (int m = 0; m < M_TRAFFIC; m++)
    buf_puts(b, "<td class=\"n\" data-v=\"0\"></td>");
  td_si(b, bytes, "B");
  buf_puts(b, "<td class=\"n\" data-v=\"\"></td><td>network</td>"
              "<td>interconnect</td>");
  td_time(b, time);
  if (ph->pred)
    td_time(b, roof);
  td_time(b, count * time);
  buf_puts(b, "<td class=\"n\" data-v=\"\"></td></tr>\n");
}

static void comm_html(Buf *b, const PhaseResult *ph, int k) {
  for (int c = 0; c < ph->ncomm; c++)
    if (ph->comm[c].after == k)
      comm_one_html(b, ph, ph->comm[c].path, coll_name[ph->comm[c].kind],
                    ph->comm[c].count, ph->comm_bytes[c], ph->comm_time[c],
                    ph->comm_roof[c]);
  if (ph->sends > 0 && ph->send_after == k)
    comm_one_html(b, ph, "pipeline.send", "send", ph->sends, ph->send_bytes,
                  ph->send_time, ph->send_time_roof);
}

static void ops_table(Buf *b, const Report *r, const PhaseResult *ph) {
  const Plan *p = ph->plan;
  bool t = ph->time != NULL;
  buf_puts(b, "<div class=\"tablewrap\"><table class=\"ops\"><thead><tr>");
  th(b, "operation", false, "path of the operation in the model");
  th(b, "module", false, "class whose formulas count it");
  th(b, "count", true, "instances in the model");
  for (int k = 0; k < M_TRAFFIC; k++)
    th(b, metric_heading[k], true, metric_name[k]);
  th(b, "bytes", true, "weights + activations + KV cache moved");
  th(b, "FLOP/B", true, "arithmetic intensity");
  if (t) {
    th(b, "bound", false, "which roofline term is larger");
    th(b, "peak", false, "compute peak it runs at");
    th(b, "time", true,
       ph->pred ? "predicted time of one instance (calibrated)"
                : "roofline time of one instance");
    if (ph->pred)
      th(b, "roofline", true, "the roofline bound of one instance");
    th(b, "x count", true, "count x time");
    th(b, "share", true, "of the phase's time");
  }
  buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (int k = 0; k < p->nrows; k++) {
    const Row *w = &p->rows[k];
    const double *v = ph->vals->row[k];
    if (ph->vals->off && ph->vals->off[k])
      continue; /* runs in the other phase (MLA, Mamba) */
    buf_puts(b, "<tr tabindex=\"0\" data-path=\"");
    esc(b, w->path);
    buf_printf(b, "\" data-explain=\"%s/", ph->name);
    esc(b, w->path);
    buf_puts(b, "\"><td>");
    esc(b, w->path);
    buf_puts(b, "</td><td title=\"");
    esc(b, w->module);
    buf_puts(b, "\">");
    esc(b, p->slots[w->slot].layer->mod->def->short_name);
    buf_puts(b, "</td>");
    char c[32];
    snprintf(c, sizeof(c), "%g", w->count);
    td_num(b, w->count, c);
    for (int m = 0; m < M_TRAFFIC; m++)
      td_si(b, v[m], metric_unit[m]);
    double bytes = metric_bytes(v);
    td_si(b, bytes, "B");
    double ai = bytes > 0 ? v[M_FLOPS] / bytes : NAN;
    char a[32];
    if (isfinite(ai))
      snprintf(a, sizeof(a), "%.*f", ai < 10 ? 2 : ai < 100 ? 1 : 0, ai);
    else
      snprintf(a, sizeof(a), "-");
    td_num(b, ai, a);
    if (t) {
      const char *bn = ph->bound[k] == BOUND_COMPUTE ? "compute" : "memory";
      buf_printf(b, "<td class=\"b-%s\">%s</td><td>%s</td>", bn, bn,
                 ph->peak[k]);
      td_time(b, ptimes(ph)[k]);
      if (ph->pred)
        td_time(b, ph->time[k]);
      td_time(b, w->count * ptimes(ph)[k]);
      double share = ptotal(ph) > 0 ? w->count * ptimes(ph)[k] / ptotal(ph) : 0;
      buf_puts(b, "<td class=\"n\" data-v=\"");
      rawnum(b, share);
      buf_printf(b,
                 "\"><span class=\"bar\" style=\"width:%.0fpx\"></span>"
                 "%.1f%%</td>",
                 share * 60, share * 100);
    }
    buf_puts(b, "</tr>\n");
    if (t)
      comm_html(b, ph, k);
  }
  buf_puts(b, "</tbody><tfoot><tr class=\"total\"><td>total</td><td></td>"
              "<td></td>");
  double tot[M_TRAFFIC] = {0};
  for (int k = 0; k < p->nrows; k++)
    for (int m = 0; m < M_TRAFFIC; m++)
      tot[m] += p->rows[k].count * ph->vals->row[k][m];
  for (int m = 0; m < M_TRAFFIC; m++)
    td_si(b, tot[m], metric_unit[m]);
  td_si(b, metric_bytes(tot), "B");
  buf_puts(b, "<td></td>");
  if (t) {
    buf_puts(b, "<td></td><td></td><td></td>");
    if (ph->pred)
      buf_puts(b, "<td></td>");
    /* the phase's latency: the rows, the collectives and the pipeline */
    td_time(b, ph->latency > 0 ? ph->latency : ptotal(ph));
    buf_puts(b, "<td class=\"n\">100%</td>");
  }
  buf_puts(b, "</tr></tfoot></table></div>\n");
  (void)r;
}

/* --------------------------------------------------------------- page */

static void card(Buf *b, const char *k, const char *v, const char *n) {
  buf_printf(b,
             "<div class=\"card\"><div class=\"k\">%s</div>"
             "<div class=\"v\">%s</div><div class=\"n\">%s</div></div>\n",
             k, v, n);
}

/* The page up to <body>, title escaped. */
static void page_head(Buf *b, const char *title, const char *on) {
  buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
              "charset=\"utf-8\">\n<meta name=\"viewport\" "
              "content=\"width=device-width,initial-scale=1\">\n<title>");
  esc(b, title);
  if (on) {
    buf_puts(b, " on ");
    esc(b, on);
  }
  buf_puts(b, ": LM-Predictor</title>\n<style>\n");
  buf_puts(b, css);
  buf_puts(b, "</style></head><body>\n");
}

/* The tip, the explanation panel and the data element the script reads
 * (its object opened: the caller writes the members and calls
 * page_tail). */
static void page_panel(Buf *b) {
  buf_puts(b, "<div id=\"tip\" role=\"tooltip\"></div>\n<aside id=\"explain\" "
              "hidden><button id=\"explain-close\" type=\"button\">close"
              "</button><h3>Where the numbers come from</h3><pre "
              "id=\"explain-text\"></pre></aside>\n");
  buf_puts(b, "<script type=\"application/json\" id=\"explain-data\">{");
}

static void page_tail(Buf *b) {
  buf_puts(b, "\n}</script>\n<script>\n");
  buf_puts(b, script);
  buf_puts(b, "</script>\n</body></html>\n");
}

void render_html(const Report *r, Buf *b) {
  page_head(b, r->model, r->gpu ? r->gpu->id : NULL);
  buf_puts(b, "<header><h1>");
  esc(b, r->model);
  buf_puts(b, "</h1><p class=\"sub\">");
  buf_printf(b,
             "batch %g, sequence %g; weights %d-bit, activations %d-bit, "
             "KV cache %d-bit; %s attention",
             r->batch, r->seq_len, r->w_bits, r->a_bits, r->kv_bits,
             r->attention);
  if (r->gpu) {
    buf_puts(b, "; ");
    esc(b, r->gpu->name);
    buf_puts(b, " (");
    esc(b, r->gpu->id);
    buf_puts(b, "): ");
    si(b, r->peaks.p16, "FLOP/s");
    buf_puts(b, " FP16/BF16");
    if (r->peaks.p8 > 0) {
      buf_puts(b, ", ");
      si(b, r->peaks.p8, "OP/s");
      buf_printf(b, " %s", r->peaks.p8_name);
    }
    if (r->peaks.p4 > 0) {
      buf_puts(b, ", ");
      si(b, r->peaks.p4, "FLOP/s");
      buf_puts(b, " FP4");
    }
    buf_puts(b, ", ");
    si(b, r->gpu->bandwidth, "B/s");
    buf_puts(b, ", ");
    si(b, r->gpu->memory, "B");
  }
  if (r->engine && r->calib) {
    buf_puts(b, "; times: ");
    esc(b, r->engine->name);
    buf_puts(b, " kernels, calibrated on ");
    esc(b, r->calib->hw_id);
    if (r->calib->fallback)
      buf_puts(b, " (borrowed: less certain)");
  } else if (r->gpu) {
    buf_puts(b, "; times: the roofline bound (--roofline)");
  }
  buf_puts(b, "</p>");
  /* the table's model lines: family and parameters, the quantization
   * read, what is not counted */
  Buf ml;
  buf_init(&ml);
  report_model_lines(r, &ml);
  for (const char *l = buf_str(&ml); *l;) {
    const char *e = strchr(l, '\n');
    size_t n = e ? (size_t)(e - l) : strlen(l);
    char *line = xstrndup(l, n);
    buf_puts(b, "<p class=\"sub\">");
    esc(b, line);
    buf_puts(b, "</p>");
    free(line);
    l += n + (e != NULL);
  }
  buf_free(&ml);
  buf_puts(b, "</header>\n");

  if (r->gpu && r->summary) {
    const Summary *s = r->summary;
    char v[64], n[128];
    buf_puts(b, "<section class=\"cards\">\n");
    char rf[32];
    time_format(s->ttft, v, sizeof(v));
    time_format(s->ttft_roofline, rf, sizeof(rf));
    snprintf(n, sizeof(n), "prefill of %g x %g tokens%s%s%s", r->batch,
             r->seq_len, r->engine ? "; roofline " : "", r->engine ? rf : "",
             "");
    card(b, "time to first token", v, n);
    time_format(s->tpot, v, sizeof(v));
    time_format(s->tpot_roofline, rf, sizeof(rf));
    snprintf(n, sizeof(n), "one decode step, KV length %g%s%s", r->seq_len,
             r->engine ? "; roofline " : "", r->engine ? rf : "");
    card(b, "time per output token", v, n);
    bool multi = r->serving && s->gpus > 1;
    snprintf(v, sizeof(v), "%.4g tok/s", s->tokens_per_s);
    if (multi)
      snprintf(n, sizeof(n), "decode, %.4g per sequence, %.4g per GPU (%g "
               "GPUs)", s->tokens_per_s / r->batch,
               s->tokens_per_s / s->gpus, s->gpus);
    else
      snprintf(n, sizeof(n), "decode, %.4g per sequence",
               s->tokens_per_s / r->batch);
    card(b, "throughput", v, n);
    si_format(s->mem.total, "B", v, sizeof(v));
    char cap[32];
    si_format(s->mem.capacity, "B", cap, sizeof(cap));
    snprintf(n, sizeof(n), "%sof %s: %s", multi ? "per GPU, " : "", cap,
             s->mem.fits ? "fits" : "does NOT fit");
    card(b, "memory", v, n);
    if (s->mem.max_batch > 0)
      snprintf(v, sizeof(v), "%s%.0f", s->mem.max_capped ? "&ge; " : "",
               s->mem.max_batch);
    else
      snprintf(v, sizeof(v), "%s", "none");
    snprintf(n, sizeof(n), "largest batch at sequence %g", r->seq_len);
    card(b, "max batch", v, n);
    const char *per = r->serving && r->pp > 1
                          ? " per GPU (the fullest pipeline stage)"
                      : r->serving && (r->tp > 1 || r->ep > 1) ? " per GPU"
                                                               : "";
    buf_printf(b, "</section>\n<section><h2>Memory footprint%s</h2>\n", per);
    footprint(b, r);
    buf_puts(b, "</section>\n");
  }

  for (int i = 0; i < r->nphases; i++) {
    const PhaseResult *ph = &r->phases[i];
    buf_printf(b,
               "<section class=\"phase\" id=\"phase-%s\"><h2>%c%s: %g "
               "token%s per sequence, KV length %g",
               ph->name, ph->name[0] - 32, ph->name + 1, ph->tokens,
               ph->tokens == 1 ? "" : "s", ph->kv_len);
    if (ph->time) {
      buf_puts(b, ", ");
      tm(b, ph->latency > 0 ? ph->latency : ptotal(ph));
    }
    buf_puts(b, "</h2>\n");
    if (ph->time && r->gpu) {
      buf_puts(b, "<div class=\"grid\">\n");
      roofline(b, r, ph, i);
      breakdown(b, ph);
      buf_puts(b, "</div>\n");
    }
    buf_puts(b, "<p class=\"note noprint\">Per instance; count = instances in "
                "the model. Click a column to sort, a row (or a point) for "
                "where its numbers come from.</p>\n");
    ops_table(b, r, ph);
    buf_puts(b, "</section>\n");
  }

  buf_puts(b, "<footer>Every number is derived from a formula in "
              "module_db.json over the model file's parameters; the "
              "roofline bound is max(FLOPs / peak, bytes / bandwidth); "
              "times are the calibrated prediction for the serving "
              "engine's kernels unless the run says --roofline. "
              "FLOPs count a multiply-add as 2; 1 GB = 10^9 bytes. Generated "
              "by lmrun " LMP_VERSION ".</footer>\n");
  page_panel(b);
  /* explanations, keyed phase/path */
  for (int i = 0; i < r->nphases; i++) {
    const PhaseResult *ph = &r->phases[i];
    bool first = i == 0;
    for (int k = 0; k < ph->plan->nrows; k++) {
      if (ph->vals->off && ph->vals->off[k])
        continue; /* runs in the other phase (MLA, Mamba) */
      Buf key, text;
      buf_init(&key);
      buf_init(&text);
      buf_printf(&key, "%s/%s", ph->name, ph->plan->rows[k].path);
      explain_row(r, i, k, &text);
      buf_puts(b, first ? "\n" : ",\n");
      first = false;
      js_str(b, buf_str(&key));
      buf_putc(b, ':');
      js_str(b, buf_str(&text));
      buf_free(&key);
      buf_free(&text);
    }
  }
  page_tail(b);
}

/* ------------------------------------------------------------- sweeps */

static const char *const palette[] = {"#2f6db5", "#d9661f", "#3c9a5f",
                                      "#8e44ad", "#c0392b", "#16a085",
                                      "#7f8c8d", "#b7950b"};

/* A chart's scale: log when every value is positive and they span a
 * factor of at least span; else linear from 0. */
typedef struct Scale {
  bool log;
  double lo, hi; /* data ends (log: whole decades, as log10) */
  double p0, p1; /* pixels */
} Scale;

static Scale scale_for(double lo, double hi, double span, double p0,
                       double p1) {
  Scale s = {.p0 = p0, .p1 = p1};
  if (lo > 0 && hi / lo >= span) {
    s.log = true;
    s.lo = floor(log10(lo));
    s.hi = ceil(log10(hi));
    if (s.hi == s.lo)
      s.hi++;
  } else {
    s.lo = lo > 0 && lo < hi ? 0 : fmin(lo, 0);
    s.hi = hi > s.lo ? hi * 1.08 : s.lo + 1;
  }
  return s;
}

static double sc_px(const Scale *s, double v) {
  double t = s->log ? (log10(v) - s->lo) / (s->hi - s->lo)
                    : (v - s->lo) / (s->hi - s->lo);
  return s->p0 + t * (s->p1 - s->p0);
}

/* Ticks: decades on a log scale, about five round steps on a linear
 * one. */
static int sc_ticks(const Scale *s, double *t, int max) {
  int n = 0;
  if (s->log) {
    for (int k = (int)s->lo; k <= (int)s->hi && n < max; k++)
      t[n++] = pow(10, k);
    return n;
  }
  double raw = (s->hi - s->lo) / 5, mag = pow(10, floor(log10(raw)));
  double step = raw / mag < 1.5   ? mag
                : raw / mag < 3.5 ? 2 * mag
                : raw / mag < 7.5 ? 5 * mag
                                  : 10 * mag;
  for (double v = ceil(s->lo / step) * step;
       v <= s->hi + step * 1e-9 && n < max; v += step)
    t[n++] = v;
  return n;
}

/* A tick label, short: "1", "250", "10k", "1.5M"; times "100 ms". */
static void tick_label(Buf *b, double v, bool time) {
  static const char *pre[] = {"", "k", "M", "G", "T", "P"};
  if (v == 0) {
    buf_puts(b, "0");
    return;
  }
  if (time) {
    static const struct {
      double scale;
      const char *unit;
    } u[] = {{1e-9, "ns"}, {1e-6, "us"}, {1e-3, "ms"}, {1, "s"}};
    int k = 0;
    while (k < 3 && v >= u[k + 1].scale * 0.9995)
      k++;
    buf_printf(b, "%.3g %s", v / u[k].scale, u[k].unit);
    return;
  }
  int p = 0;
  while (fabs(v) >= 999.5 && p < 5) {
    v /= 1000;
    p++;
  }
  buf_printf(b, "%.3g%s", v, pre[p]);
}

typedef enum { Y_TTFT, Y_TPOT, Y_THROUGHPUT } YVar;

static double yval(const SweepPoint *p, YVar y) {
  return y == Y_TTFT ? p->ttft : y == Y_TPOT ? p->tpot : p->throughput;
}

static bool usable(const SweepPoint *p, YVar y) {
  double v = yval(p, y);
  return isfinite(v) && v > 0 && isfinite(p->x);
}

static void sweep_chart(Buf *b, const SweepPage *pg, YVar y) {
  static const char *const title[] = {"Time to first token",
                                      "Time per output token", "Throughput"};
  static const char *const ylabel[] = {"time to first token (time)",
                                       "time per output token (time)",
                                       "throughput (tokens/s)"};
  const double W = 640, H = 380, L = 78, R = 16, T = 16, B = 52;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int i = 0; i < pg->n; i++) {
    const SweepPoint *p = &pg->pts[i];
    if (!usable(p, y))
      continue;
    xlo = fmin(xlo, p->x);
    xhi = fmax(xhi, p->x);
    ylo = fmin(ylo, yval(p, y));
    yhi = fmax(yhi, yval(p, y));
  }
  double target = y == Y_TTFT ? pg->slo_ttft : y == Y_TPOT ? pg->slo_tpot : 0;
  if (target > 0) {
    ylo = fmin(ylo, target);
    yhi = fmax(yhi, target);
  }
  buf_printf(b, "<figure><h3>%s</h3>", title[y]);
  if (!isfinite(xlo)) {
    buf_puts(b, "<p class=\"note\">No configuration could be predicted."
                "</p></figure>\n");
    return;
  }
  if (xhi == xlo)
    xhi = xlo + 1, xlo = xlo > 1 ? xlo - 1 : 0;
  Scale sx = scale_for(xlo, xhi, 8, L, W - R);
  Scale sy = scale_for(ylo, yhi, 30, H - B, T);
  buf_printf(b,
             "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s "
             "against %s\">\n",
             W, H, title[y], pg->xname);
  double t[64];
  int nt = sc_ticks(&sx, t, 64);
  buf_puts(b, "<g class=\"grid\">");
  for (int i = 0; i < nt; i++)
    buf_printf(b, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>",
               sc_px(&sx, t[i]), T, sc_px(&sx, t[i]), H - B);
  int nty = sc_ticks(&sy, t + 32, 32);
  for (int i = 0; i < nty; i++)
    buf_printf(b, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>", L,
               sc_px(&sy, t[32 + i]), W - R, sc_px(&sy, t[32 + i]));
  buf_puts(b, "</g>\n");
  buf_printf(b,
             "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
             "fill=\"none\" stroke=\"#9aa3af\"/>\n",
             L, T, W - L - R, H - T - B);
  for (int i = 0; i < nt; i++) {
    buf_printf(b,
               "<text class=\"ax\" x=\"%.1f\" y=\"%.0f\" "
               "text-anchor=\"middle\">",
               sc_px(&sx, t[i]), H - B + 16);
    tick_label(b, t[i], false);
    buf_puts(b, "</text>");
  }
  for (int i = 0; i < nty; i++) {
    buf_printf(b,
               "<text class=\"ax\" x=\"%.0f\" y=\"%.1f\" "
               "text-anchor=\"end\">",
               L - 6, sc_px(&sy, t[32 + i]) + 4);
    tick_label(b, t[32 + i], y != Y_THROUGHPUT);
    buf_puts(b, "</text>");
  }
  buf_printf(b, "\n<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">",
             (L + W - R) / 2, H - 12);
  esc(b, pg->xname);
  buf_printf(b, "%s</text>\n", sx.log ? " (log scale)" : "");
  buf_printf(b,
             "<text x=\"16\" y=\"%.0f\" text-anchor=\"middle\" "
             "transform=\"rotate(-90 16 %.0f)\">%s%s</text>\n",
             (T + H - B) / 2, (T + H - B) / 2, ylabel[y],
             sy.log ? ", log scale" : "");
  /* the SLO: the target, the region that misses it shaded */
  if (target > 0) {
    double ty = sc_px(&sy, target);
    buf_printf(b,
               "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.1f\" "
               "fill=\"#c53030\" fill-opacity=\"0.06\"/>",
               L, T, W - L - R, ty - T > 0 ? ty - T : 0);
    buf_printf(b,
               "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" "
               "stroke=\"#c53030\" stroke-dasharray=\"6 4\" "
               "stroke-width=\"1.5\"/><text x=\"%.0f\" y=\"%.1f\" "
               "text-anchor=\"end\" style=\"fill:#c53030\">SLO ",
               L, ty, W - R, ty, W - R - 4, ty - 5);
    tm(b, target);
    buf_puts(b, "</text>\n");
  }
  /* series: one line each, points in x order */
  const char *names[8];
  int nnames = 0;
  for (int i = 0; i < pg->n; i++) {
    int k = 0;
    while (k < nnames && strcmp(names[k], pg->pts[i].series) != 0)
      k++;
    if (k == nnames && nnames < 8)
      names[nnames++] = pg->pts[i].series;
  }
  int *idx = xcalloc((size_t)pg->n + 1, sizeof(int));
  for (int s = 0; s < nnames; s++) {
    int m = 0;
    for (int i = 0; i < pg->n; i++)
      if (strcmp(pg->pts[i].series, names[s]) == 0 && usable(&pg->pts[i], y))
        idx[m++] = i;
    for (int i = 1; i < m; i++)
      for (int j = i; j > 0 && pg->pts[idx[j]].x < pg->pts[idx[j - 1]].x; j--) {
        int tmp = idx[j];
        idx[j] = idx[j - 1];
        idx[j - 1] = tmp;
      }
    const char *c = palette[s];
    buf_printf(b,
               "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
               "points=\"",
               c);
    for (int i = 0; i < m; i++)
      buf_printf(b, "%s%.1f,%.1f", i ? " " : "", sc_px(&sx, pg->pts[idx[i]].x),
                 sc_px(&sy, yval(&pg->pts[idx[i]], y)));
    buf_puts(b, "\"/>\n");
    for (int i = 0; i < m; i++) {
      const SweepPoint *p = &pg->pts[idx[i]];
      bool ok = p->fits && p->slo <= 0;
      buf_printf(b,
                 "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" "
                 "fill=\"%s\" style=\"stroke:%s\" data-tip=\"",
                 sc_px(&sx, p->x), sc_px(&sy, yval(p, y)), p->best ? 7.0 : 4.5,
                 ok ? c : "#fff", c);
      Buf tip;
      buf_init(&tip);
      buf_printf(&tip, "%s, %s = %g\nTTFT ", p->series, pg->xname, p->x);
      tm(&tip, p->ttft);
      buf_puts(&tip, ", TPOT ");
      tm(&tip, p->tpot);
      buf_puts(&tip, "\nthroughput ");
      si(&tip, p->throughput, "tokens/s");
      buf_printf(&tip, "\n%s%s%s", p->fits ? "fits" : "does NOT fit",
                 p->slo < 0    ? ""
                 : p->slo == 0 ? ", meets the SLO"
                               : ", misses the SLO",
                 p->best ? " (the best)" : "");
      esc(b, buf_str(&tip));
      buf_free(&tip);
      buf_puts(b, "\"/>\n");
    }
  }
  /* the frontier on the throughput chart: at each x, the best throughput
   * among the configurations that fit and meet the SLO */
  if (y == Y_THROUGHPUT && pg->slo) {
    int m = 0;
    for (int i = 0; i < pg->n; i++)
      if (usable(&pg->pts[i], y) && pg->pts[i].fits && pg->pts[i].slo == 0)
        idx[m++] = i;
    for (int i = 1; i < m; i++)
      for (int j = i; j > 0 && pg->pts[idx[j]].x < pg->pts[idx[j - 1]].x; j--) {
        int tmp = idx[j];
        idx[j] = idx[j - 1];
        idx[j - 1] = tmp;
      }
    buf_puts(b, "<polyline class=\"frontier\" fill=\"none\" "
                "stroke=\"#2e7d32\" stroke-opacity=\"0.35\" "
                "stroke-width=\"9\" stroke-linecap=\"round\" "
                "stroke-linejoin=\"round\" points=\"");
    int w = 0;
    for (int i = 0; i < m;) {
      int best = idx[i];
      int j = i;
      for (; j < m && pg->pts[idx[j]].x == pg->pts[idx[i]].x; j++)
        if (pg->pts[idx[j]].throughput > pg->pts[best].throughput)
          best = idx[j];
      buf_printf(b, "%s%.1f,%.1f", w++ ? " " : "", sc_px(&sx, pg->pts[best].x),
                 sc_px(&sy, pg->pts[best].throughput));
      i = j;
    }
    buf_puts(b, "\"/>\n");
  }
  free(idx);
  buf_puts(b, "</svg><div class=\"legend\">");
  for (int s = 0; s < nnames; s++) {
    buf_printf(b, "<span><span class=\"sw\" style=\"background:%s\"></span>",
               palette[s]);
    esc(b, names[s]);
    buf_puts(b, "</span>");
  }
  buf_printf(b, "<span>hollow: does not fit%s</span>",
             pg->slo ? " or misses the SLO" : "");
  if (y == Y_THROUGHPUT && pg->slo)
    buf_puts(b, "<span>wide green: the SLO frontier (the best throughput that "
                "meets it at each value); large point: the best</span>");
  buf_puts(b, "</div></figure>\n");
}

void render_sweep_html(const SweepPage *pg, Buf *b) {
  page_head(b, pg->model, NULL);
  buf_puts(b, "<header><h1>");
  esc(b, pg->model);
  buf_puts(b, ": sweep over ");
  esc(b, pg->xname);
  buf_puts(b, "</h1><p class=\"sub\">");
  esc(b, pg->settings);
  buf_printf(b, "; %d configuration%s", pg->n, pg->n == 1 ? "" : "s");
  if (pg->slo) {
    buf_puts(b, "; SLO ");
    esc(b, pg->slo);
  }
  buf_puts(b, "</p></header>\n");
  if (pg->outcome) {
    buf_puts(b, "<section><h2>Best configuration</h2><pre>");
    esc(b, pg->outcome);
    buf_puts(b, "</pre></section>\n");
  }
  buf_puts(b, "<section><h2>Latency and throughput</h2><div class=\"grid\">\n");
  for (int y = Y_TTFT; y <= Y_THROUGHPUT; y++)
    sweep_chart(b, pg, (YVar)y);
  buf_puts(b, "</div></section>\n<section><h2>Configurations</h2>"
              "<div class=\"tablewrap\"><table class=\"ops\"><thead><tr>");
  th(b, "configuration", false, "the swept options but the x variable");
  buf_puts(b, "<th class=\"n\">");
  esc(b, pg->xname);
  buf_puts(b, "</th>");
  th(b, "TTFT", true, "time to first token");
  th(b, "TPOT", true, "time per output token");
  th(b, "throughput", true, "tokens/s");
  th(b, "memory", false, "fits on the GPU");
  if (pg->slo)
    th(b, "SLO", false, "meets the targets");
  buf_puts(b, "</tr></thead>\n<tbody>\n");
  for (int i = 0; i < pg->n; i++) {
    const SweepPoint *p = &pg->pts[i];
    buf_puts(b, "<tr><td>");
    esc(b, p->series);
    buf_puts(b, "</td>");
    char x[32];
    snprintf(x, sizeof(x), "%g", p->x);
    td_num(b, p->x, x);
    td_time(b, p->ttft);
    td_time(b, p->tpot);
    td_si(b, p->throughput, "tok/s");
    buf_printf(b, "<td>%s</td>", p->fits ? "fits" : "does not fit");
    if (pg->slo)
      buf_printf(b, "<td>%s%s</td>", p->slo == 0 ? "meets" : "misses",
                 p->best ? " (best)" : "");
    buf_puts(b, "</tr>\n");
  }
  buf_puts(b, "</tbody></table></div></section>\n");
  buf_puts(b, "<footer>One prediction per configuration (see the per-run "
              "report, lmrun --format html without a sweep, for where each "
              "number comes from). Generated by lmrun " LMP_VERSION
              ".</footer>\n");
  page_panel(b);
  page_tail(b);
}
