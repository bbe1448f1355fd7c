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

/* ==== webmisc.c (helper D) ==== */

void ccci_web_badge(struct ccci_web *w, struct ccci_http_req *r,
                    const char *const *arg)
{
  (void)w, (void)arg;
  not_yet(r);
}
void ccci_web_metrics(struct ccci_web *w, struct ccci_http_req *r,
                      const char *const *arg)
{
  (void)w, (void)arg;
  not_yet(r);
}
void ccci_web_healthz(struct ccci_web *w, struct ccci_http_req *r,
                      const char *const *arg)
{
  (void)arg;
  if (w->stopping)
    ccci_http_respond(r, 503, "text/plain", NULL, "stopping\n", 9);
  else
    ccci_http_respond(r, 200, "text/plain", NULL, "ok\n", 3);
}

/* ==== end of webmisc.c ==== */

/* ==== webhook.c (helper D) ==== */

void ccci_web_hook(struct ccci_web *w, struct ccci_http_req *r,
                   const char *const *arg)
{
  (void)w, (void)arg;
  ccci_http_respond(r, 404, "text/plain", NULL, "no webhook\n", 11);
}
void ccci_web_hook_reload(struct ccci_web *w, const struct ccci_config *cfg)
{
  (void)w, (void)cfg;
}
void ccci_web_hook_stop(struct ccci_web *w)
{
  (void)w;
}

/* ==== end of webhook.c ==== */
