/* INTERIM while issue 16 is being built: the handlers of the modules that
 * have not landed yet answer 501. Each module's author deletes its block
 * here when the module lands; the file goes once all have. */
#include <string.h>

#include "web_int.h"

static void not_yet(struct ccci_http_req *r)
{
  ccci_http_respond(r, 501, "text/plain", NULL, "not built yet\n", 14);
}

/* ==== webpages.c (helper B) ==== */

void ccci_web_page_log(struct ccci_web *w, struct ccci_http_req *r,
                       const char *const *arg)
{
  (void)w, (void)arg;
  not_yet(r);
}
/* ==== end of webpages.c ==== */
