/* parse.c: recursive-descent parser, Token list -> Node tree.
 *
 * One static function per grammar rule, each with its rule above it, in
 * chibicc's style: Node *rule(Token **rest, Token *tok). Names are not
 * resolved here (check.c does that); only the shape is checked, plus the
 * arity of the built-in functions.
 *
 *   formula = expr EOF
 *   expr    = mul ("+" mul | "-" mul)*
 *   mul     = unary ("*" unary | "/" unary | "//" unary)*
 *   unary   = ("+" | "-") unary | primary
 *   primary = NUM | PARAM | "(" expr ")"
 *           | MODREF "(" (expr ("," expr)*)? ")"
 *           | FUNC "(" expr ("," expr)* ")"        FUNC: min max ceil floor
 */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 200

typedef struct Parser {
  Arena *arena;
  const FormulaSrc *src;
  Error *err;
  int depth;
} Parser;

static Node *expr(Parser *p, Token **rest, Token *tok);

static Node *new_node(Parser *p, NodeKind kind, Token *tok) {
  Node *n = arena_alloc(p->arena, sizeof(Node));
  n->kind = kind;
  n->tok = tok;
  n->index = -1;
  return n;
}

static Node *new_binary(Parser *p, NodeKind kind, Token *tok, Node *l,
                        Node *r) {
  Node *n = new_node(p, kind, tok);
  n->lhs = l;
  n->rhs = r;
  return n;
}

static const char *describe(const Token *t) {
  switch (t->kind) {
  case TK_EOF:
    return "end of formula";
  case TK_NUM:
    return "number";
  case TK_PARAM:
    return "parameter";
  case TK_MODREF:
    return "module reference";
  case TK_IDENT:
    return "name";
  default:
    return "operator";
  }
}

static Node *fail(Parser *p, Token *tok, const char *what) {
  if (tok->kind == TK_PUNCT)
    formula_error(p->err, p->src, tok, "expected %s, found '%.*s'", what,
                  tok->len, tok->loc);
  else
    formula_error(p->err, p->src, tok, "expected %s, found %s", what,
                  describe(tok));
  return NULL;
}

/* Parse "(" expr ("," expr)* ")" into n->args; empty list allowed if
 * allow_empty. */
static bool arg_list(Parser *p, Token **rest, Token *tok, Node *n,
                     bool allow_empty) {
  if (!tok_equal(tok, "(")) {
    fail(p, tok, "'(' after the name");
    return false;
  }
  tok = tok->next;
  Node *buf[64];
  int nargs = 0;
  if (!(allow_empty && tok_equal(tok, ")"))) {
    for (;;) {
      if (nargs == (int)LM_ARRAY_LEN(buf)) {
        formula_error(p->err, p->src, tok, "too many arguments (max %d)",
                      (int)LM_ARRAY_LEN(buf));
        return false;
      }
      Node *a = expr(p, &tok, tok);
      if (!a)
        return false;
      buf[nargs++] = a;
      if (!tok_equal(tok, ","))
        break;
      tok = tok->next;
    }
  }
  if (!tok_equal(tok, ")")) {
    fail(p, tok, "',' or ')'");
    return false;
  }
  n->nargs = nargs;
  n->args = arena_alloc(p->arena, sizeof(Node *) * (size_t)(nargs ? nargs : 1));
  memcpy(n->args, buf, sizeof(Node *) * (size_t)nargs);
  *rest = tok->next;
  return true;
}

/* primary = NUM | PARAM | "(" expr ")" | MODREF args | FUNC args */
static Node *primary(Parser *p, Token **rest, Token *tok) {
  if (tok->kind == TK_NUM) {
    Node *n = new_node(p, ND_NUM, tok);
    n->val = tok->val;
    *rest = tok->next;
    return n;
  }
  if (tok->kind == TK_PARAM) {
    Node *n = new_node(p, ND_PARAM, tok);
    n->name = tok->name;
    *rest = tok->next;
    return n;
  }
  if (tok_equal(tok, "(")) {
    Node *n = expr(p, &tok, tok->next);
    if (!n)
      return NULL;
    if (!tok_equal(tok, ")"))
      return fail(p, tok, "')'");
    *rest = tok->next;
    return n;
  }
  if (tok->kind == TK_MODREF) {
    Node *n = new_node(p, ND_CALL, tok);
    n->name = tok->name;
    if (!arg_list(p, rest, tok->next, n, true))
      return NULL;
    return n;
  }
  if (tok->kind == TK_IDENT) {
    static const struct {
      const char *name;
      NodeKind kind;
      int min, max;
    } funcs[] = {{"min", ND_MIN, 2, 64},
                 {"max", ND_MAX, 2, 64},
                 {"ceil", ND_CEIL, 1, 1},
                 {"floor", ND_FLOOR, 1, 1}};
    for (size_t i = 0; i < LM_ARRAY_LEN(funcs); i++) {
      if (strcmp(tok->name, funcs[i].name) != 0)
        continue;
      Node *n = new_node(p, funcs[i].kind, tok);
      if (!arg_list(p, rest, tok->next, n, false))
        return NULL;
      if (n->nargs < funcs[i].min || n->nargs > funcs[i].max) {
        if (funcs[i].min == funcs[i].max)
          formula_error(p->err, p->src, tok,
                        "%s() takes %d argument, given %d", tok->name,
                        funcs[i].min, n->nargs);
        else
          formula_error(p->err, p->src, tok,
                        "%s() takes at least %d arguments, given %d",
                        tok->name, funcs[i].min, n->nargs);
        return NULL;
      }
      if (n->kind == ND_CEIL || n->kind == ND_FLOOR)
        n->lhs = n->args[0];
      return n;
    }
    if (tok_equal(tok->next, "("))
      formula_error(p->err, p->src, tok,
                    "unknown function '%s' (known: min, max, ceil, floor)",
                    tok->name);
    else
      formula_error(p->err, p->src, tok,
                    "unknown name '%s': write parameters as {%s}", tok->name,
                    tok->name);
    return NULL;
  }
  return fail(p, tok, "a number, {parameter}, ${module}(...), function or '('");
}

/* unary = ("+" | "-") unary | primary */
static Node *unary(Parser *p, Token **rest, Token *tok) {
  if (++p->depth > MAX_DEPTH) {
    formula_error(p->err, p->src, tok, "formula nested too deeply");
    return NULL;
  }
  Node *n;
  if (tok_equal(tok, "+")) {
    n = unary(p, rest, tok->next);
  } else if (tok_equal(tok, "-")) {
    Node *operand = unary(p, rest, tok->next);
    n = operand ? new_binary(p, ND_NEG, tok, operand, NULL) : NULL;
  } else {
    n = primary(p, rest, tok);
  }
  p->depth--;
  return n;
}

/* mul = unary ("*" unary | "/" unary | "//" unary)* */
static Node *mul(Parser *p, Token **rest, Token *tok) {
  Node *n = unary(p, &tok, tok);
  while (n) {
    Token *op = tok;
    NodeKind kind;
    if (tok_equal(tok, "*"))
      kind = ND_MUL;
    else if (tok_equal(tok, "//"))
      kind = ND_FLOORDIV;
    else if (tok_equal(tok, "/"))
      kind = ND_DIV;
    else
      break;
    Node *r = unary(p, &tok, tok->next);
    n = r ? new_binary(p, kind, op, n, r) : NULL;
  }
  *rest = tok;
  return n;
}

/* expr = mul ("+" mul | "-" mul)* */
static Node *expr(Parser *p, Token **rest, Token *tok) {
  if (++p->depth > MAX_DEPTH) {
    formula_error(p->err, p->src, tok, "formula nested too deeply");
    return NULL;
  }
  Node *n = mul(p, &tok, tok);
  while (n) {
    Token *op = tok;
    NodeKind kind;
    if (tok_equal(tok, "+"))
      kind = ND_ADD;
    else if (tok_equal(tok, "-"))
      kind = ND_SUB;
    else
      break;
    Node *r = mul(p, &tok, tok->next);
    n = r ? new_binary(p, kind, op, n, r) : NULL;
  }
  p->depth--;
  *rest = tok;
  return n;
}

/* The first node deeper than FORMULA_MAX_HEIGHT, or NULL. Iterative (an
 * explicit stack), so a tree of any shape is walked safely: a flat chain
 * {B}+{B}+... is a left-deep tree as tall as it is long, which the
 * recursive walks after parsing (check, eval, emit, prog) must not meet. */
static const Node *too_tall(const Node *root) {
  typedef struct {
    const Node *n;
    int depth;
  } Item;
  size_t cap = 64, len = 0;
  Item *st = xmalloc(cap * sizeof(Item));
  st[len++] = (Item){root, 1};
  const Node *bad = NULL;
  while (len && !bad) {
    Item it = st[--len];
    if (it.depth > FORMULA_MAX_HEIGHT) {
      bad = it.n;
      break;
    }
    const Node *kids[2] = {it.n->lhs, it.n->rhs};
    int nk = it.n->kind == ND_MIN || it.n->kind == ND_MAX ||
                     it.n->kind == ND_CALL
                 ? it.n->nargs
                 : 0;
    if (len + 2 + (size_t)nk > cap) {
      cap = (len + 2 + (size_t)nk) * 2;
      st = xrealloc(st, cap * sizeof(Item));
    }
    for (int k = 0; k < 2; k++)
      if (kids[k])
        st[len++] = (Item){kids[k], it.depth + 1};
    for (int k = 0; k < nk; k++)
      st[len++] = (Item){it.n->args[k], it.depth + 1};
  }
  free(st);
  return bad;
}

Node *parse_formula(Arena *a, const FormulaSrc *src, Error *err) {
  Token *tok = tokenize(a, src, err);
  if (!tok)
    return NULL;
  if (tok->kind == TK_EOF) {
    formula_error(err, src, tok, "empty formula");
    return NULL;
  }
  Parser p = {.arena = a, .src = src, .err = err};
  Node *n = expr(&p, &tok, tok);
  if (!n)
    return NULL;
  if (tok->kind != TK_EOF) {
    if (tok_equal(tok, ")"))
      formula_error(err, src, tok, "unmatched ')'");
    else
      fail(&p, tok, "an operator or end of formula");
    return NULL;
  }
  const Node *deep = too_tall(n);
  if (deep) {
    formula_error(err, src, deep->tok,
                  "formula nested too deeply: more than %d levels of "
                  "operations (each operator of a chain such as a + b + c "
                  "is one level)",
                  FORMULA_MAX_HEIGHT);
    return NULL;
  }
  return n;
}

static void sexpr(const Node *n, Buf *out) {
  static const char *ops[] = {
      [ND_NEG] = "neg", [ND_ADD] = "+",    [ND_SUB] = "-",
      [ND_MUL] = "*",   [ND_DIV] = "/",    [ND_FLOORDIV] = "//",
      [ND_MIN] = "min", [ND_MAX] = "max",  [ND_CEIL] = "ceil",
      [ND_FLOOR] = "floor"};
  char num[64];
  switch (n->kind) {
  case ND_NUM:
    emit_number(n->val, num, sizeof(num));
    buf_puts(out, num);
    return;
  case ND_PARAM:
    buf_printf(out, "{%s}", n->name);
    return;
  case ND_NEG:
  case ND_CEIL:
  case ND_FLOOR:
    buf_printf(out, "(%s ", ops[n->kind]);
    sexpr(n->lhs, out);
    buf_putc(out, ')');
    return;
  case ND_MIN:
  case ND_MAX:
  case ND_CALL:
    if (n->kind == ND_CALL)
      buf_printf(out, "(${%s}", n->name);
    else
      buf_printf(out, "(%s", ops[n->kind]);
    for (int i = 0; i < n->nargs; i++) {
      buf_putc(out, ' ');
      sexpr(n->args[i], out);
    }
    buf_putc(out, ')');
    return;
  default:
    buf_printf(out, "(%s ", ops[n->kind]);
    sexpr(n->lhs, out);
    buf_putc(out, ' ');
    sexpr(n->rhs, out);
    buf_putc(out, ')');
    return;
  }
}

void node_sexpr(const Node *n, Buf *out) { sexpr(n, out); }
