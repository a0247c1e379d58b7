// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "array_size.h"
#include "rbd_cmdline.h"

/*
 * A value as qemu's option parsers hand it on: bytes [s, e), where ",,"
 * is one ',' when @commas (QemuOpts and keyval values; not JSON strings,
 * nor the filename of -hda, which qemu takes verbatim).
 */
struct val {
	const char *s, *e;
	bool commas;
};

static const struct val no_val = { .s = "", .e = "" };

/* The next character of @v, its ",," undone; -1 at the end. */
static int val_getc(struct val *v)
{
	unsigned char c;

	if (v->s >= v->e)
		return -1;
	c = (unsigned char)*v->s++;
	if (c == ',' && v->commas && v->s < v->e && *v->s == ',')
		v->s++;
	return c;
}

/* Whether @v starts with @prefix; then @v is left past it. */
static bool val_skip(struct val *v, const char *prefix)
{
	struct val w = *v;

	for (; *prefix; prefix++)
		if (val_getc(&w) != (unsigned char)*prefix)
			return false;
	*v = w;
	return true;
}

static bool val_is(struct val v, const char *s)
{
	return val_skip(&v, s) && val_getc(&v) < 0;
}

/* A name read character by character, compared with the storage's. */
struct name_cmp {
	const char *want;
	size_t len, n;
	bool same;
};

static void cmp_init(struct name_cmp *c, const char *want, size_t len)
{
	*c = (struct name_cmp){ .want = want, .len = len, .same = true };
}

static void cmp_put(struct name_cmp *c, int ch)
{
	if (c->n >= c->len || (unsigned char)c->want[c->n] != ch)
		c->same = false;
	else
		c->n++;
}

static bool cmp_equal(const struct name_cmp *c)
{
	return c->same && c->n == c->len;
}

/* An image name as reported: cut to fit. */
struct name_out {
	char s[RBD_IMAGE_NAME_MAX];
	size_t n;
};

static void out_put(struct name_out *o, int ch)
{
	if (o->n < sizeof(o->s) - 1)
		o->s[o->n++] = (char)ch;
	o->s[o->n] = '\0';
}

struct search {
	const char *pool, *ns;
	size_t pool_len, ns_len;
	char (*images)[RBD_IMAGE_NAME_MAX];
	unsigned int max;
	int found;
	int err; /* the first argument naming rbd that could not be read */
	unsigned int nodes; /* rbd nodes of the current argument */
	bool give_up; /* the current argument is past a bound */
};

static void fail(struct search *s, int err)
{
	if (!s->err)
		s->err = err;
	s->give_up = true;
}

/*
 * One more node of the argument that may be an rbd disk (a driver rbd, a
 * filename rbd: or json:), before its options are looked up: false past
 * the bound, which also bounds those lookups.
 */
static bool node(struct search *s)
{
	if (s->give_up)
		return false;
	if (++s->nodes > RBD_ARG_NODES) {
		fail(s, -E2BIG);
		return false;
	}
	return true;
}

static void disk(struct search *s, const char *image)
{
	if ((unsigned int)s->found < s->max)
		snprintf(s->images[s->found], RBD_IMAGE_NAME_MAX, "%s", image);
	if (s->found < INT_MAX)
		s->found++;
}

/*
 * The next character of an rbd: filename part, its backslash escape
 * undone (block/rbd.c: a '\' makes the next character plain, a last one
 * is itself); -1 at the end or at a plain @stop, which sets *stopped.
 */
static int part_getc(struct val *v, int stop, bool *stopped)
{
	struct val peek;
	int c, next;

	c = val_getc(v);
	if (c < 0)
		return -1;
	if (c == stop) {
		*stopped = true;
		return -1;
	}
	if (c == '\\') {
		peek = *v;
		next = val_getc(&peek);
		if (next >= 0) {
			*v = peek;
			return next;
		}
	}
	return c;
}

/* Whether @v has a plain @c before its first plain @stop (-1: none). */
static bool has_plain(struct val v, int c, int stop)
{
	int ch;

	while ((ch = val_getc(&v)) >= 0) {
		if (ch == c)
			return true;
		if (ch == stop)
			return false;
		if (ch == '\\')
			val_getc(&v);
	}
	return false;
}

/*
 * POOL/[NAMESPACE/]IMAGE[@SNAP][:key=value...], after "rbd:", split the
 * way block/rbd.c splits it: the pool up to the first '/' (none: qemu
 * refuses the filename), the image part up to '@' when the rest has one
 * anywhere, else up to ':', and a '/' in the image part ends a namespace.
 */
static void rbd_filename(struct search *s, struct val v)
{
	struct name_cmp pool, ns;
	struct name_out image = { .n = 0 };
	bool stopped = false;
	int c, end;

	cmp_init(&pool, s->pool, s->pool_len);
	while ((c = part_getc(&v, '/', &stopped)) >= 0)
		cmp_put(&pool, c);
	if (!stopped)
		return;
	end = has_plain(v, '@', -1) ? '@' : ':';
	cmp_init(&ns, s->ns, s->ns_len);
	if (has_plain(v, '/', end)) {
		stopped = false;
		while ((c = part_getc(&v, '/', &stopped)) >= 0)
			cmp_put(&ns, c);
	}
	stopped = false;
	while ((c = part_getc(&v, end, &stopped)) >= 0)
		out_put(&image, c);
	if (cmp_equal(&pool) && cmp_equal(&ns))
		disk(s, image.s);
}

static bool val_equal(struct val v, const char *want, size_t len)
{
	struct name_cmp c;
	int ch;

	cmp_init(&c, want, len);
	while ((ch = val_getc(&v)) >= 0 && c.same)
		cmp_put(&c, ch);
	return cmp_equal(&c);
}

/* A node with driver rbd and its pool, namespace and image options. */
static void rbd_node(struct search *s, struct val pool, struct val ns,
		     struct val image)
{
	struct name_out out = { .n = 0 };
	int c;

	if (!val_equal(pool, s->pool, s->pool_len) ||
	    !val_equal(ns, s->ns, s->ns_len))
		return;
	while ((c = val_getc(&image)) >= 0)
		out_put(&out, c);
	disk(s, out.s);
}

/* The node options that name a disk, by the last part of their key. */
enum kind { K_DRIVER, K_POOL, K_NS, K_IMAGE, K_FILENAME, K_NONE };

static const char *const kind_names[] = {
	[K_DRIVER] = "driver", [K_POOL] = "pool",	  [K_NS] = "namespace",
	[K_IMAGE] = "image",   [K_FILENAME] = "filename",
};

/*
 * What key @key is: "pool" of node "" or "file.pool" of node "file.",
 * *pre and *prelen naming the node. In -drive (@drive), "file" is the
 * filename of node "file." and "format" the driver of node "".
 */
static enum kind key_kind(const char *key, size_t klen, bool drive,
			  const char **pre, size_t *prelen)
{
	size_t n;

	if (drive && klen == 4 && !memcmp(key, "file", 4)) {
		*pre = "file.";
		*prelen = 5;
		return K_FILENAME;
	}
	if (drive && klen == 6 && !memcmp(key, "format", 6)) {
		*pre = "";
		*prelen = 0;
		return K_DRIVER;
	}
	for (unsigned int k = 0; k < ARRAY_SIZE(kind_names); k++) {
		n = strlen(kind_names[k]);
		if (klen < n || memcmp(key + klen - n, kind_names[k], n))
			continue;
		if (klen > n && key[klen - n - 1] != '.')
			continue;
		*pre = key;
		*prelen = klen - n;
		return (enum kind)k;
	}
	return K_NONE;
}

static void json_text(struct search *s, struct val v, unsigned int nest);

static bool names_node(struct val v)
{
	return val_skip(&v, "rbd:") || val_skip(&v, "json:");
}

/* A filename, counted by node(): a disk when "rbd:", a node when "json:". */
static void filename(struct search *s, struct val v, unsigned int nest)
{
	if (val_skip(&v, "rbd:"))
		rbd_filename(s, v);
	else if (val_skip(&v, "json:"))
		json_text(s, v, nest + 1);
}

/* ---------------------------------------------------------------- */
/* key=value,... (-drive's QemuOpts, -blockdev's keyval)             */

struct kv {
	const char *pre;
	size_t prelen;
	enum kind kind;
	struct val v;
};

struct kvs {
	struct kv kv[RBD_ARG_KEYS];
	unsigned int n;
};

static bool same_key(const struct kv *a, const char *pre, size_t prelen,
		     enum kind kind)
{
	return a->kind == kind && a->prelen == prelen &&
	       !memcmp(a->pre, pre, prelen);
}

static unsigned int kv_index(const struct kvs *t, const char *pre,
			     size_t prelen, enum kind kind)
{
	unsigned int i;

	for (i = 0; i < t->n; i++)
		if (same_key(&t->kv[i], pre, prelen, kind))
			break;
	return i;
}

static const struct kv *kv_get(const struct kvs *t, const char *pre,
			       size_t prelen, enum kind kind)
{
	unsigned int i = kv_index(t, pre, prelen, kind);

	return i < t->n ? &t->kv[i] : NULL;
}

/*
 * Splits @v at ',' into the keys that may name a disk, each once: of a
 * key given twice the last counts (QemuOpts'; keyval refuses it). False
 * past RBD_ARG_KEYS keys.
 */
static bool kv_split(struct kvs *t, struct val v, bool drive)
{
	const char *p = v.s, *key, *pre;
	struct val value;
	unsigned int i;
	size_t klen, prelen;
	enum kind kind;

	t->n = 0;
	while (p < v.e) {
		key = p;
		while (p < v.e && *p != '=' && *p != ',')
			p++;
		klen = (size_t)(p - key);
		if (p == v.e || *p == ',') {
			/* A key alone is a flag: it names no disk. */
			if (p < v.e)
				p++;
			continue;
		}
		value = (struct val){ .s = ++p, .commas = true };
		while (p < v.e) {
			if (*p == ',' && (p + 1 == v.e || p[1] != ','))
				break;
			p += *p == ',' ? 2 : 1;
		}
		value.e = p;
		if (p < v.e)
			p++;
		kind = key_kind(key, klen, drive, &pre, &prelen);
		if (kind == K_NONE)
			continue;
		i = kv_index(t, pre, prelen, kind);
		if (i == ARRAY_SIZE(t->kv))
			return false;
		if (i == t->n)
			t->n++;
		t->kv[i] = (struct kv){
			.pre = pre, .prelen = prelen, .kind = kind, .v = value
		};
	}
	return true;
}

static void kv_rbd_node(struct search *s, const struct kvs *t, const char *pre,
			size_t prelen)
{
	const struct kv *pool, *ns, *image, *fn;
	struct val v;

	pool = kv_get(t, pre, prelen, K_POOL);
	if (!pool) {
		/* driver=rbd,filename=rbd:POOL/IMAGE is qemu's too. */
		fn = kv_get(t, pre, prelen, K_FILENAME);
		v = fn ? fn->v : no_val;
		if (val_skip(&v, "rbd:"))
			rbd_filename(s, v);
		return;
	}
	ns = kv_get(t, pre, prelen, K_NS);
	image = kv_get(t, pre, prelen, K_IMAGE);
	rbd_node(s, pool->v, ns ? ns->v : no_val, image ? image->v : no_val);
}

static void kv_value(struct search *s, struct val v, bool drive,
		     unsigned int nest)
{
	const struct kv *kv;
	struct kvs t;

	if (!kv_split(&t, v, drive)) {
		fail(s, -E2BIG);
		return;
	}
	for (unsigned int i = 0; i < t.n && !s->give_up; i++) {
		kv = &t.kv[i];
		if (kv->kind == K_DRIVER && val_is(kv->v, "rbd")) {
			if (node(s))
				kv_rbd_node(s, &t, kv->pre, kv->prelen);
		} else if (kv->kind == K_FILENAME && names_node(kv->v) &&
			   node(s)) {
			/* A node with a driver is its driver's: rbd's is above. */
			if (!kv_get(&t, kv->pre, kv->prelen, K_DRIVER))
				filename(s, kv->v, nest);
		}
	}
}

/* ---------------------------------------------------------------- */
/* JSON (-blockdev {...}, json: filenames)                           */

static const char *json_str(json_t *j, size_t *len)
{
	if (!json_is_string(j))
		return NULL;
	*len = json_string_length(j);
	return json_string_value(j);
}

static bool json_str_is(json_t *j, const char *s)
{
	size_t len;
	const char *v = json_str(j, &len);

	return v && len == strlen(s) && !memcmp(v, s, len);
}

static struct val json_val(json_t *j)
{
	size_t len;
	const char *v = json_str(j, &len);

	return v ? (struct val){ .s = v, .e = v + len } : no_val;
}

/* The member of @obj whose key is @pre followed by @kind's name. */
static json_t *obj_get(json_t *obj, const char *pre, size_t prelen,
		       enum kind kind)
{
	const char *name = kind_names[kind], *key;
	size_t n = strlen(name);
	json_t *member;

	json_object_foreach(obj, key, member) {
		if (strlen(key) == prelen + n && !memcmp(key, pre, prelen) &&
		    !memcmp(key + prelen, name, n))
			return member;
	}
	return NULL;
}

static void json_rbd_node(struct search *s, json_t *obj, const char *pre,
			  size_t prelen)
{
	json_t *pool = obj_get(obj, pre, prelen, K_POOL), *ns, *image;
	struct val v;

	if (!pool) {
		v = json_val(obj_get(obj, pre, prelen, K_FILENAME));
		if (val_skip(&v, "rbd:"))
			rbd_filename(s, v);
		return;
	}
	ns = obj_get(obj, pre, prelen, K_NS);
	image = obj_get(obj, pre, prelen, K_IMAGE);
	/* An option that is no string: qemu refuses the node, runs no disk. */
	if (!json_is_string(pool) || (ns && !json_is_string(ns)) ||
	    (image && !json_is_string(image)))
		return;
	rbd_node(s, json_val(pool), json_val(ns), json_val(image));
}

/* Every key of @obj that makes it (or a dotted node in it) a disk. */
static void json_node(struct search *s, json_t *obj, unsigned int nest)
{
	const char *key, *pre;
	size_t prelen;
	enum kind kind;
	json_t *member;

	json_object_foreach(obj, key, member) {
		if (s->give_up)
			return;
		kind = key_kind(key, strlen(key), false, &pre, &prelen);
		if (kind == K_DRIVER && json_str_is(member, "rbd")) {
			if (node(s))
				json_rbd_node(s, obj, pre, prelen);
		} else if (kind == K_FILENAME && names_node(json_val(member)) &&
			   node(s)) {
			if (!obj_get(obj, pre, prelen, K_DRIVER))
				filename(s, json_val(member), nest);
		}
	}
}

/* Depth is bounded before the parse: this recursion is too. */
static void json_walk(struct search *s, json_t *j, unsigned int nest)
{
	const char *key;
	json_t *member;
	size_t i;

	if (json_is_object(j)) {
		json_node(s, j, nest);
		json_object_foreach(j, key, member) {
			if (s->give_up)
				return;
			json_walk(s, member, nest);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, member) {
			if (s->give_up)
				return;
			json_walk(s, member, nest);
		}
	}
}

/* The nesting depth of JSON text @v, strings skipped, stopping past @max. */
static unsigned int json_depth(struct val v, unsigned int max)
{
	unsigned int depth = 0, deepest = 0;
	bool in_string = false;
	int c;

	while ((c = val_getc(&v)) >= 0 && deepest <= max) {
		if (in_string) {
			if (c == '\\')
				val_getc(&v);
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > deepest)
				deepest = depth;
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return deepest;
}

/* jansson reads a -drive value through this, its ",," undone. */
static size_t json_feed(void *buffer, size_t buflen, void *data)
{
	struct val *v = data;
	char *out = buffer;
	size_t n = 0;
	int c;

	while (n < buflen && (c = val_getc(v)) >= 0)
		out[n++] = (char)c;
	return n;
}

/*
 * JSON text @v. qemu takes one value, in UTF-8, with no key twice (its
 * parser refuses duplicates): jansson is asked for the same, so no tail
 * is allowed (no JSON_DISABLE_EOF_CHECK; the size is bounded before the
 * parse instead). Text jansson refuses may still be qemu's (it also takes
 * 'single-quoted' strings): that argument is one this cannot read.
 */
static void json_text(struct search *s, struct val v, unsigned int nest)
{
	json_error_t jerr = { .line = 0 };
	json_t *root;

	if (s->give_up)
		return;
	if (nest > RBD_JSON_NEST || (size_t)(v.e - v.s) > RBD_JSON_MAX ||
	    json_depth(v, RBD_JSON_DEPTH) > RBD_JSON_DEPTH) {
		fail(s, -E2BIG);
		return;
	}
	if (v.commas)
		root = json_load_callback(json_feed, &v, JSON_REJECT_DUPLICATES,
					  &jerr);
	else
		root = json_loadb(v.s, (size_t)(v.e - v.s),
				  JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson says nothing only when it could not allocate. */
		if (json_error_code(&jerr) == json_error_out_of_memory ||
		    !jerr.text[0])
			fail(s, -ENOMEM);
		else
			fail(s, -EBADMSG);
		return;
	}
	json_walk(s, root, nest);
	json_decref(root);
}

/* ---------------------------------------------------------------- */
/* The arguments                                                    */

enum opt { OPT_NONE, OPT_DRIVE, OPT_BLOCKDEV, OPT_FILE };

static const struct {
	const char *name;
	enum opt opt;
} opts[] = {
	{ "drive", OPT_DRIVE },
	{ "blockdev", OPT_BLOCKDEV },
	/* qemu's shorthands: the value is a filename, taken verbatim. */
	{ "hda", OPT_FILE },
	{ "hdb", OPT_FILE },
	{ "hdc", OPT_FILE },
	{ "hdd", OPT_FILE },
	{ "fda", OPT_FILE },
	{ "fdb", OPT_FILE },
	{ "cdrom", OPT_FILE },
	{ "sd", OPT_FILE },
	{ "mtdblock", OPT_FILE },
	{ "pflash", OPT_FILE },
};

/*
 * The option argument @a names, with one dash or two; *value is set when
 * it carries its value after '=' (else left NULL).
 */
static enum opt option(const char *a, size_t alen, const char **value,
		       size_t *vlen)
{
	size_t n;

	if (alen < 2 || a[0] != '-')
		return OPT_NONE;
	a++;
	alen--;
	if (a[0] == '-') {
		a++;
		alen--;
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(opts); i++) {
		n = strlen(opts[i].name);
		if (alen < n || memcmp(a, opts[i].name, n))
			continue;
		if (alen == n)
			return opts[i].opt;
		if (a[n] == '=') {
			*value = a + n + 1;
			*vlen = alen - n - 1;
			return opts[i].opt;
		}
	}
	return OPT_NONE;
}

/* Whether @s can name rbd at all: every form spells it out but JSON's \u. */
static bool may_name_rbd(const char *s, size_t len)
{
	return memmem(s, len, "rbd", 3) || memmem(s, len, "\\u", 2);
}

static void option_value(struct search *s, enum opt opt, const char *a,
			 size_t len)
{
	struct val v = { .s = a, .e = a + len, .commas = true };

	if (!may_name_rbd(a, len))
		return;
	s->nodes = 0;
	s->give_up = false;
	switch (opt) {
	case OPT_DRIVE:
		kv_value(s, v, true, 0);
		break;
	case OPT_BLOCKDEV:
		/* qemu's own test: JSON, verbatim, when it starts with '{'. */
		if (len && a[0] == '{') {
			v.commas = false;
			json_text(s, v, 0);
		} else {
			kv_value(s, v, false, 0);
		}
		break;
	case OPT_FILE:
		v.commas = false;
		if (names_node(v) && node(s))
			filename(s, v, 0);
		break;
	case OPT_NONE:
		break;
	}
}

int rbd_cmdline_disks(const char *cmdline, size_t len, bool cut,
		      const char *pool, const char *ns,
		      char (*images)[RBD_IMAGE_NAME_MAX], unsigned int max)
{
	struct search s = {
		.pool = pool,
		.pool_len = strlen(pool),
		.ns = ns ? ns : "",
		.ns_len = ns ? strlen(ns) : 0,
		.images = images,
		.max = images ? max : 0,
	};
	const char *p = cmdline, *end, *nul, *a, *value;
	enum opt pending = OPT_NONE, opt;
	size_t alen, vlen;

	if (!cmdline || !len)
		return cut ? -E2BIG : 0;
	end = cmdline + len;
	if (cut) {
		/* The last argument may be cut short: only whole ones. */
		nul = memrchr(cmdline, '\0', len);
		end = nul ? nul + 1 : cmdline;
	}
	if (!may_name_rbd(cmdline, (size_t)(end - cmdline)))
		return cut ? -E2BIG : 0;
	/* argv[0] is the program, whatever it says. */
	nul = memchr(p, '\0', (size_t)(end - p));
	p = nul ? nul + 1 : end;
	while (p < end) {
		a = p;
		nul = memchr(p, '\0', (size_t)(end - p));
		alen = nul ? (size_t)(nul - p) : (size_t)(end - p);
		p = nul ? nul + 1 : end;
		/* An option's value is never an option: qemu takes it as is. */
		if (pending != OPT_NONE) {
			option_value(&s, pending, a, alen);
			pending = OPT_NONE;
			continue;
		}
		value = NULL;
		opt = option(a, alen, &value, &vlen);
		if (opt == OPT_NONE)
			continue;
		if (value)
			option_value(&s, opt, value, vlen);
		else
			pending = opt;
	}
	if (s.found)
		return s.found;
	if (s.err)
		return s.err;
	return cut ? -E2BIG : 0;
}

ssize_t rbd_cmdline_read(int dirfd, char *buf, size_t size, bool *cut)
{
	size_t len = 0;
	ssize_t n;
	char more;
	int fd, err = 0;

	*cut = false;
	fd = openat(dirfd, "cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size) {
		n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (!err && len == size) {
		do
			n = read(fd, &more, 1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			err = -errno;
		*cut = n > 0;
	}
	close(fd);
	return err ? err : (ssize_t)len;
}
