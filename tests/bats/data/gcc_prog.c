/* Compiled by gcc under libmesh (programs.bats); its output is compared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *l, *r;
    unsigned key;
    char name[24];
};

static struct node *insert(struct node *t, unsigned key) {
    if (!t) {
        struct node *n = calloc(1, sizeof *n);
        n->key = key;
        snprintf(n->name, sizeof n->name, "n%u", key);
        return n;
    }
    if (key < t->key)
        t->l = insert(t->l, key);
    else if (key > t->key)
        t->r = insert(t->r, key);
    return t;
}

static unsigned long walk(const struct node *t, unsigned depth, unsigned *maxd) {
    if (!t)
        return 0;
    if (depth > *maxd)
        *maxd = depth;
    return t->key + strlen(t->name) + walk(t->l, depth + 1, maxd) + walk(t->r, depth + 1, maxd);
}

static void drop(struct node *t) {
    if (t) {
        drop(t->l);
        drop(t->r);
        free(t);
    }
}

static int cmp(const void *a, const void *b) {
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    unsigned s = 1;
    struct node *t = NULL;
    for (int i = 0; i < 200000; i++) {
        s = s * 1664525u + 1013904223u;
        t = insert(t, s >> 8);
    }
    unsigned maxd = 0;
    unsigned long sum = walk(t, 0, &maxd);
    drop(t);

    enum { N = 1000000 };
    unsigned *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = s;
    }
    qsort(v, N, sizeof *v, cmp);
    unsigned long h = 0;
    for (int i = 0; i < N; i += 1000)
        h = h * 31 + v[i];
    free(v);

    char *str = NULL;
    size_t len = 0;
    for (int i = 0; i < 5000; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d,", i * i);
        str = realloc(str, len + (size_t)n + 1);
        memcpy(str + len, buf, (size_t)n + 1);
        len += (size_t)n;
    }
    printf("tree sum %lu depth %u, sorted hash %lu, string length %zu tail %s\n", sum, maxd, h, len, str + len - 12);
    free(str);
    return 0;
}
