/* check.c: name resolution and static checks of a parsed formula.
 *
 * Resolves {param} to its position in the scope and ${module} to its
 * ModuleDef, and rejects: unknown parameters, unknown modules, module calls
 * where none are allowed (model templates), wrong call arity, and division
 * by a constant zero. Call cycles between modules are a whole-database
 * property and are checked in db.c.
 */
#include "gen.h"
#include "modabi.h"

#include <stdlib.h>
#include <string.h>

bool node_is_const(const Node *n) {
  switch (n->kind) {
  case ND_NUM:
    return true;
  case ND_PARAM:
  case ND_CALL:
    return false;
  case ND_MIN:
  case ND_MAX:
    for (int i = 0; i < n->nargs; i++)
      if (!node_is_const(n->args[i]))
        return false;
    return true;
  default:
    return node_is_const(n->lhs) && (!n->rhs || node_is_const(n->rhs));
  }
}

/* Append "(parameters: a, b, c)" style hints, shortened when long. */
static void list_names(Buf *b, const Scope *sc) {
  if (sc->nnames == 0) {
    buf_printf(b, " (no %ss are declared)", sc->what);
    return;
  }
  buf_printf(b, " (%ss: ", sc->what);
  int shown = sc->nnames < 12 ? sc->nnames : 12;
  for (int i = 0; i < shown; i++)
    buf_printf(b, "%s%s", i ? ", " : "", sc->names[i]);
  if (shown < sc->nnames)
    buf_printf(b, ", ... %d more", sc->nnames - shown);
  buf_putc(b, ')');
}

static int check(Node *n, const FormulaSrc *src, const Scope *sc,
                 Error *err) {
  switch (n->kind) {
  case ND_NUM:
    return 0;
  case ND_PARAM:
    for (int i = 0; i < sc->nnames; i++)
      if (strcmp(sc->names[i], n->name) == 0) {
        n->index = i;
        return 0;
      }
    {
      Buf b;
      buf_init(&b);
      buf_printf(&b, "unknown %s '%s'", sc->what, n->name);
      list_names(&b, sc);
      formula_error(err, src, n->tok, "%s", buf_str(&b));
      buf_free(&b);
    }
    return -1;
  case ND_CALL: {
    if (!sc->modules) {
      formula_error(err, src, n->tok, "module calls are not allowed here");
      return -1;
    }
    ModuleDef *md = hashmap_get(sc->modules, n->name);
    const char *dot = strrchr(n->name, '.');
    if (!md && dot) {
      /* ${package.module.Class.op}: an atomic operation of Class */
      char *parent = xstrndup(n->name, (size_t)(dot - n->name));
      ModuleDef *pm = hashmap_get(sc->modules, parent);
      free(parent);
      if (pm) {
        n->callee_op = db_find_op(pm, dot + 1);
        if (!n->callee_op) {
          Buf b;
          buf_init(&b);
          for (int i = 0; i < pm->nops; i++)
            buf_printf(&b, "%s%s", i ? ", " : "", pm->ops[i].name);
          formula_error(err, src, n->tok,
                        "%s has no atomic operation '%s'%s%s%s",
                        pm->full_name, dot + 1, pm->nops ? " (it has: " : "",
                        buf_str(&b), pm->nops ? ")" : "");
          buf_free(&b);
          return -1;
        }
        md = pm;
      }
    }
    if (!md) {
      /* a short name given where the full name is needed? */
      size_t i = 0;
      void *v;
      const ModuleDef *hint = NULL;
      while (hashmap_next(sc->modules, &i, NULL, &v)) {
        const ModuleDef *cand = v;
        if (strcmp(cand->short_name, n->name) == 0 ||
            (strrchr(n->name, '.') &&
             strcmp(cand->short_name, strrchr(n->name, '.') + 1) == 0)) {
          hint = cand;
          break;
        }
      }
      if (hint)
        formula_error(err, src, n->tok,
                      "unknown module '%s' (did you mean ${%s}?)", n->name,
                      hint->full_name);
      else
        formula_error(err, src, n->tok, "unknown module '%s'", n->name);
      return -1;
    }
    if (n->nargs != md->nparams) {
      Buf b;
      buf_init(&b);
      for (int i = 0; i < md->nparams; i++)
        buf_printf(&b, "%s%s", i ? ", " : "", md->params[i]);
      formula_error(err, src, n->tok,
                    "${%s} takes %d argument%s (%s), given %d", n->name,
                    md->nparams, md->nparams == 1 ? "" : "s", buf_str(&b),
                    n->nargs);
      buf_free(&b);
      return -1;
    }
    n->callee = md;
    for (int i = 0; i < n->nargs; i++)
      if (check(n->args[i], src, sc, err) < 0)
        return -1;
    return 0;
  }
  case ND_MIN:
  case ND_MAX:
    for (int i = 0; i < n->nargs; i++)
      if (check(n->args[i], src, sc, err) < 0)
        return -1;
    return 0;
  case ND_NEG:
  case ND_CEIL:
  case ND_FLOOR:
    return check(n->lhs, src, sc, err);
  default:
    if (check(n->lhs, src, sc, err) < 0 || check(n->rhs, src, sc, err) < 0)
      return -1;
    if ((n->kind == ND_DIV || n->kind == ND_FLOORDIV) &&
        node_is_const(n->rhs) && node_eval(n->rhs, NULL, M_FLOPS) == 0) {
      formula_error(err, src, n->rhs->tok, "division by zero");
      return -1;
    }
    if (n->kind == ND_POW && node_is_const(n->rhs)) {
      double e = node_eval(n->rhs, NULL, M_FLOPS);
      if (!(e > -9007199254740992.0 && e < 9007199254740992.0) ||
          e != lm_floor(e)) {
        formula_error(err, src, n->rhs->tok,
                      "pow() takes a whole exponent below 2^53");
        return -1;
      }
    }
    return 0;
  }
}

int check_formula(Node *n, const FormulaSrc *src, const Scope *sc,
                  Error *err) {
  return check(n, src, sc, err);
}
