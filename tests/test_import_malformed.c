/* test_import_malformed.c - imports every file of tests/malformed/ (made by make_corpus.py) and
 * checks it is refused with the message EXPECTED lists for it, naming the file. Also checks that
 * every corpus file is listed, so a case cannot silently drop out.
 */
#include "test.h"
#include "importer.h"

#include <dirent.h>

#define CORPUS "tests/malformed"
#define MAX_CASES 256

int main(void)
{
    FILE *f = fopen(CORPUS "/EXPECTED", "r");
    if (!f) {
        fprintf(stderr, "cannot open %s/EXPECTED (run from the repository root)\n", CORPUS);
        return 1;
    }
    static char names[MAX_CASES][128];
    int ncases = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        CHECK_MSG(tab != NULL, "EXPECTED line without a tab: %s", line);
        if (!tab || ncases == MAX_CASES)
            continue;
        *tab = 0;
        const char *expect = tab + 1;
        snprintf(names[ncases++], sizeof names[0], "%.127s", line);
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", CORPUS, line);
        Diag d;
        diag_init(&d, path);
        Model *m = NULL;
        Status st = onnx_import_file(path, &m, &d);
        CHECK_MSG(st != ST_OK && m == NULL, "%s: imported, expected an error containing '%s'", line, expect);
        if (st == ST_OK) {
            model_free(m);
            continue;
        }
        CHECK_MSG(strstr(d.msg, expect) != NULL, "%s: message '%s' lacks '%s'", line, d.msg, expect);
        CHECK_MSG(d.file && strcmp(d.file, path) == 0, "%s: the diagnostic does not name the file", line);
        printf("%-28s %-12s %s\n", line, status_name(st), d.msg);
    }
    fclose(f);
    CHECK_MSG(ncases >= 30, "only %d cases in EXPECTED", ncases);
    DIR *dir = opendir(CORPUS);
    CHECK(dir != NULL);
    for (struct dirent *e; dir && (e = readdir(dir));) {
        const char *n = e->d_name;
        if (n[0] == '.' || strcmp(n, "EXPECTED") == 0 || strcmp(n, "make_corpus.py") == 0 ||
            strcmp(n, "ext_data.bin") == 0)
            continue;
        bool listed = false;
        for (int i = 0; i < ncases; i++)
            listed |= strcmp(names[i], n) == 0;
        CHECK_MSG(listed, "%s/%s is not listed in EXPECTED", CORPUS, n);
    }
    if (dir)
        closedir(dir);
    return test_summary("test_import_malformed");
}
