/* objload.c: a loader for the relocatable objects libtcc writes
 * (TCC_OUTPUT_OBJ), so that a cached compile runs without libtcc.
 *
 * It links one ELF64 x86-64 ET_REL file on its own: the allocated sections
 * laid out in fresh pages (code read+execute, the rest read+write), the
 * relocations applied, the global symbols indexed by name. It accepts only
 * what this job needs and libtcc produces for generated code: RELA
 * sections, the relocation types R_X86_64_64, _PC32, _PLT32, _GOTPCREL (a
 * GOT after the data), _32, _32S, _PC64 and NONE, and only symbols defined
 * in the file (the generated code calls nothing outside itself). Anything else is refused
 * (NULL with a reason), and the caller compiles instead. Every offset,
 * size, index and name read from the file is bounds-checked first, so a
 * damaged file is refused, never followed: the loader itself never reads
 * or writes outside the file or the pages it mapped.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "runtime.h"

#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct ObjImage {
  unsigned char *mem; /* the mapped pages */
  size_t size;
  HashMap syms;       /* global name (copied) -> address */
};

typedef struct ObjLayout {
  const unsigned char *file;
  size_t len;
  const Elf64_Shdr *sh;
  int nsh;
  uint64_t *addr;     /* per section: offset in the image (allocated ones) */
  uint64_t got;       /* offset of the GOT (after the data): one address */
  size_t ngot;        /* per symbol reached through R_X86_64_GOTPCREL */
  int64_t *slot;      /* per symbol: its GOT slot, or -1 */
} ObjLayout;

static int refuse(Error *err, const char *why) {
  err_set(err, "object: %s", why);
  return -1;
}

/* [off, off+size) lies within len. */
static bool within(uint64_t off, uint64_t size, uint64_t len) {
  return off <= len && size <= len - off;
}

static bool is_alloc(const Elf64_Shdr *s) {
  return (s->sh_flags & SHF_ALLOC) != 0 && s->sh_type != SHT_NULL;
}

static int check_header(const unsigned char *p, size_t len, Error *err) {
  if (len < sizeof(Elf64_Ehdr))
    return refuse(err, "shorter than an ELF header");
  Elf64_Ehdr h;
  memcpy(&h, p, sizeof(h)); /* the file need not be aligned: copy, never cast */
  const Elf64_Ehdr *eh = &h;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 ||
      eh->e_ident[EI_DATA] != ELFDATA2LSB)
    return refuse(err, "not a little-endian ELF64 file");
  if (eh->e_type != ET_REL || eh->e_machine != EM_X86_64)
    return refuse(err, "not an x86-64 relocatable object");
#if !defined(__x86_64__)
  return refuse(err, "this host is not x86-64");
#endif
  if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum == 0 ||
      eh->e_shnum >= SHN_LORESERVE ||
      !within(eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr), len))
    return refuse(err, "section headers out of the file");
  return 0;
}

/* Sections: contents inside the file, sane alignment; allocated ones get
 * an offset in the image, code first. Returns the image size, or 0. */
static uint64_t lay_out(ObjLayout *L, uint64_t *code_end, Error *err) {
  uint64_t off = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 1; i < L->nsh; i++) {
      const Elf64_Shdr *s = &L->sh[i];
      if (!is_alloc(s) || ((s->sh_flags & SHF_EXECINSTR) != 0) != (pass == 0))
        continue;
      uint64_t align = s->sh_addralign ? s->sh_addralign : 1;
      if ((align & (align - 1)) != 0 || align > 4096 ||
          s->sh_size > (64u << 20)) {
        refuse(err, "a section with a bad alignment or size");
        return 0;
      }
      if (s->sh_type != SHT_NOBITS && !within(s->sh_offset, s->sh_size, L->len)) {
        refuse(err, "a section's contents out of the file");
        return 0;
      }
      off = (off + align - 1) & ~(align - 1);
      L->addr[i] = off;
      off += s->sh_size;
      if (off > (256u << 20)) { /* generated code is a few hundred KB */
        refuse(err, "an image over 256 MB");
        return 0;
      }
    }
    if (pass == 0) {
      long page = sysconf(_SC_PAGESIZE);
      off = (off + (uint64_t)page - 1) & ~((uint64_t)page - 1);
      *code_end = off;
    }
  }
  return off ? off : 1;
}

/* The symbol table and its strings (the only SHT_SYMTAB). */
static int find_symtab(const ObjLayout *L, Elf64_Sym **syms, size_t *nsyms,
                       const char **str, size_t *strsize, Error *err) {
  int found = -1;
  for (int i = 1; i < L->nsh; i++)
    if (L->sh[i].sh_type == SHT_SYMTAB) {
      if (found >= 0)
        return refuse(err, "two symbol tables");
      found = i;
    }
  if (found < 0)
    return refuse(err, "no symbol table");
  const Elf64_Shdr *s = &L->sh[found];
  if (s->sh_entsize != sizeof(Elf64_Sym) ||
      !within(s->sh_offset, s->sh_size, L->len) || s->sh_link == 0 ||
      s->sh_link >= (Elf64_Word)L->nsh)
    return refuse(err, "a bad symbol table");
  const Elf64_Shdr *st = &L->sh[s->sh_link];
  if (st->sh_type != SHT_STRTAB || !within(st->sh_offset, st->sh_size, L->len) ||
      st->sh_size == 0 || L->file[st->sh_offset + st->sh_size - 1] != '\0')
    return refuse(err, "a bad string table");
  *nsyms = s->sh_size / sizeof(Elf64_Sym);
  *syms = xmalloc(*nsyms * sizeof(Elf64_Sym) + 1);
  memcpy(*syms, L->file + s->sh_offset, *nsyms * sizeof(Elf64_Sym));
  *str = (const char *)L->file + st->sh_offset;
  *strsize = st->sh_size;
  return (int)found;
}

/* A symbol's address in the image (mem + offset), or -1 if it has none
 * this loader can give (undefined, common, a section not loaded). */
static int sym_value(const ObjLayout *L, const unsigned char *mem,
                     const Elf64_Sym *sym, uint64_t *val) {
  if (sym->st_shndx == SHN_ABS) {
    *val = sym->st_value;
    return 0;
  }
  if (sym->st_shndx == SHN_UNDEF || sym->st_shndx >= L->nsh)
    return -1;
  const Elf64_Shdr *s = &L->sh[sym->st_shndx];
  if (!is_alloc(s) || sym->st_value > s->sh_size)
    return -1;
  *val = (uint64_t)(uintptr_t)mem + L->addr[sym->st_shndx] + sym->st_value;
  return 0;
}

/* How many R_X86_64_GOTPCREL relocations there are (at most that many
 * GOT slots; tcc reaches global data through the GOT). */
static size_t count_got(const ObjLayout *L) {
  size_t n = 0;
  for (int i = 1; i < L->nsh; i++) {
    const Elf64_Shdr *rs = &L->sh[i];
    if (rs->sh_type != SHT_RELA || rs->sh_entsize != sizeof(Elf64_Rela) ||
        !within(rs->sh_offset, rs->sh_size, L->len))
      continue;
    for (size_t k = 0; k < rs->sh_size / sizeof(Elf64_Rela); k++) {
      Elf64_Rela r;
      memcpy(&r, L->file + rs->sh_offset + k * sizeof(r), sizeof(r));
      n += ELF64_R_TYPE(r.r_info) == R_X86_64_GOTPCREL;
    }
  }
  return n;
}

static int relocate(ObjLayout *L, unsigned char *mem, int symtab,
                    const Elf64_Sym *syms, size_t nsyms, Error *err) {
  L->slot = xmalloc((nsyms + 1) * sizeof(int64_t));
  for (size_t i = 0; i < nsyms; i++)
    L->slot[i] = -1;
  for (int i = 1; i < L->nsh; i++) {
    const Elf64_Shdr *rs = &L->sh[i];
    if (rs->sh_type == SHT_REL)
      return refuse(err, "REL relocations");
    if (rs->sh_type != SHT_RELA)
      continue;
    if (rs->sh_info == 0 || rs->sh_info >= (Elf64_Word)L->nsh)
      return refuse(err, "relocations for no section");
    const Elf64_Shdr *ts = &L->sh[rs->sh_info];
    if (!is_alloc(ts))
      continue; /* e.g. debug information: not loaded */
    if (ts->sh_type == SHT_NOBITS || rs->sh_link != (Elf64_Word)symtab ||
        rs->sh_entsize != sizeof(Elf64_Rela) ||
        !within(rs->sh_offset, rs->sh_size, L->len))
      return refuse(err, "a bad relocation section");
    size_t n = rs->sh_size / sizeof(Elf64_Rela);
    unsigned char *base = mem + L->addr[rs->sh_info];
    for (size_t k = 0; k < n; k++) {
      Elf64_Rela rk;
      memcpy(&rk, L->file + rs->sh_offset + k * sizeof(Elf64_Rela), sizeof(rk));
      uint32_t type = ELF64_R_TYPE(rk.r_info);
      uint64_t si = ELF64_R_SYM(rk.r_info);
      if (type == R_X86_64_NONE)
        continue;
      uint64_t width = type == R_X86_64_64 || type == R_X86_64_PC64 ? 8 : 4;
      if (type == R_X86_64_GOTPCREL && si < nsyms && L->slot[si] < 0) {
        if (L->ngot == 0)
          return refuse(err, "more GOT entries than counted");
        L->slot[si] = (int64_t)--L->ngot;
      }
      if (!within(rk.r_offset, width, ts->sh_size))
        return refuse(err, "a relocation outside its section");
      uint64_t S;
      if (si == 0 || si >= nsyms || sym_value(L, mem, &syms[si], &S) < 0)
        return refuse(err, "a relocation against an undefined symbol");
      unsigned char *at = base + rk.r_offset;
      uint64_t P = (uint64_t)(uintptr_t)at;
      uint64_t v = S + (uint64_t)rk.r_addend;
      int64_t pc = (int64_t)(v - P);
      if (type == R_X86_64_GOTPCREL) {
        /* the slot holds S; the code reads it PC-relative */
        unsigned char *g = mem + L->got + 8 * (uint64_t)L->slot[si];
        memcpy(g, &S, 8);
        pc = (int64_t)((uint64_t)(uintptr_t)g + (uint64_t)rk.r_addend - P);
        type = R_X86_64_PC32;
      }
      switch (type) {
      case R_X86_64_64:
        memcpy(at, &v, 8);
        break;
      case R_X86_64_PC64:
        memcpy(at, &pc, 8);
        break;
      case R_X86_64_PC32:
      case R_X86_64_PLT32: {
        if (pc < INT32_MIN || pc > INT32_MAX)
          return refuse(err, "a PC-relative relocation out of range");
        int32_t w = (int32_t)pc;
        memcpy(at, &w, 4);
        break;
      }
      case R_X86_64_32: {
        if (v > UINT32_MAX)
          return refuse(err, "an absolute relocation out of range");
        uint32_t w = (uint32_t)v;
        memcpy(at, &w, 4);
        break;
      }
      case R_X86_64_32S: {
        int64_t sv = (int64_t)v;
        if (sv < INT32_MIN || sv > INT32_MAX)
          return refuse(err, "an absolute relocation out of range");
        int32_t w = (int32_t)sv;
        memcpy(at, &w, 4);
        break;
      }
      default:
        return refuse(err, "a relocation type this loader does not apply");
      }
    }
  }
  return 0;
}

/* Index the defined global and weak symbols by name. */
static int index_symbols(ObjImage *o, const ObjLayout *L, const Elf64_Sym *syms,
                         size_t nsyms, const char *str, size_t strsize,
                         Error *err) {
  for (size_t i = 1; i < nsyms; i++) {
    int bind = ELF64_ST_BIND(syms[i].st_info);
    if ((bind != STB_GLOBAL && bind != STB_WEAK) ||
        syms[i].st_shndx == SHN_UNDEF)
      continue;
    if (syms[i].st_name >= strsize)
      return refuse(err, "a symbol name out of the string table");
    uint64_t v;
    if (sym_value(L, o->mem, &syms[i], &v) < 0)
      return refuse(err, "a global symbol this loader cannot place");
    const char *name = str + syms[i].st_name; /* NUL-terminated: checked */
    if (!*name)
      continue;
    if (hashmap_add(&o->syms, name, (void *)(uintptr_t)v) < 0)
      return refuse(err, "a symbol defined twice");
  }
  return 0;
}

ObjImage *obj_load(const void *file, size_t len, Error *err) {
  const unsigned char *p = file;
  if (check_header(p, len, err) < 0)
    return NULL;
  Elf64_Ehdr eh;
  memcpy(&eh, p, sizeof(eh));
  ObjLayout L = {.file = p, .len = len, .nsh = eh.e_shnum};
  Elf64_Shdr *sh = xmalloc((size_t)L.nsh * sizeof(Elf64_Shdr));
  memcpy(sh, p + eh.e_shoff, (size_t)L.nsh * sizeof(Elf64_Shdr));
  L.sh = sh;
  L.addr = xcalloc((size_t)L.nsh, sizeof(uint64_t));
  ObjImage *o = xcalloc(1, sizeof(ObjImage));
  hashmap_init(&o->syms);
  uint64_t code_end = 0;
  Elf64_Sym *syms = NULL;
  const char *str = NULL;
  size_t nsyms = 0, strsize = 0;
  uint64_t size = lay_out(&L, &code_end, err);
  int symtab = size ? find_symtab(&L, &syms, &nsyms, &str, &strsize, err) : -1;
  if (symtab < 0)
    goto fail;
  L.ngot = count_got(&L);
  L.got = (size + 7) & ~(uint64_t)7;
  size = L.got + 8 * (uint64_t)L.ngot;
  o->size = size;
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (m == MAP_FAILED) {
    refuse(err, "cannot map memory");
    goto fail;
  }
  o->mem = m;
  for (int i = 1; i < L.nsh; i++)
    if (is_alloc(&L.sh[i]) && L.sh[i].sh_type != SHT_NOBITS)
      memcpy(o->mem + L.addr[i], p + L.sh[i].sh_offset, L.sh[i].sh_size);
  if (relocate(&L, o->mem, symtab, syms, nsyms, err) < 0 ||
      index_symbols(o, &L, syms, nsyms, str, strsize, err) < 0)
    goto fail;
  if (code_end && mprotect(o->mem, code_end, PROT_READ | PROT_EXEC) != 0) {
    refuse(err, "cannot make the code executable");
    goto fail;
  }
  free(L.addr);
  free(L.slot);
  free(sh);
  free(syms);
  return o;
fail:
  free(L.addr);
  free(L.slot);
  free(sh);
  free(syms);
  obj_free(o);
  return NULL;
}

void *obj_symbol(const ObjImage *o, const char *name) {
  return o ? hashmap_get(&o->syms, name) : NULL;
}

void obj_free(ObjImage *o) {
  if (!o)
    return;
  if (o->mem)
    munmap(o->mem, o->size);
  hashmap_free(&o->syms);
  free(o);
}
