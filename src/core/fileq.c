/* Ordered atomic file writes on the thread pool (fileq.h). */
#include "ccci/core/fileq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccci/core/util.h"

struct waiter {
  ccci_fileq_done done;
  void *arg;
};

struct fileq_job {
  struct ccci_list node;
  uv_work_t work;
  struct ccci_fileq *q;
  char *path, *data;
  size_t len;
  unsigned flags;
  int rc;
  struct waiter *waiters;
  size_t nwaiters;
};

void ccci_fileq_init(struct ccci_fileq *q, uv_loop_t *loop)
{
  q->loop = loop;
  ccci_list_init(&q->jobs);
  q->flight = NULL;
  q->done = 0;
}

bool ccci_fileq_busy(const struct ccci_fileq *q)
{
  return q->flight != NULL || !ccci_list_empty(&q->jobs);
}

static void job_work(uv_work_t *w)
{
  struct fileq_job *j = ccci_container_of(w, struct fileq_job, work);

  j->rc = 0;
  if (j->flags & CCCI_FILEQ_MKDIR) {
    char *dir = ccci_dirname(j->path);
    j->rc = ccci_mkdir_p(dir, 0750);
    free(dir);
  }
  if (j->rc == 0 && j->data != NULL)
    j->rc = ccci_write_file_atomic(j->path, j->data, j->len, 0640);
  else if (j->rc == 0 && unlink(j->path) < 0 && errno != ENOENT)
    j->rc = -errno;
}

static void start(struct ccci_fileq *q);

static void job_done(uv_work_t *w, int status)
{
  struct fileq_job *j = ccci_container_of(w, struct fileq_job, work);
  struct ccci_fileq *q = j->q;
  size_t i;

  (void)status; /* a queued work item is never cancelled here */
  q->flight = NULL;
  q->done++;
  start(q);
  /* The next write is on its way before anyone hears of this one, so a
   * done that queues more, or frees the owner once it is not busy, sees
   * the queue as it is. */
  for (i = 0; i < j->nwaiters; i++)
    if (j->waiters[i].done != NULL)
      j->waiters[i].done(j->waiters[i].arg, j->rc);
  free(j->waiters);
  free(j->path);
  free(j->data);
  free(j);
}

static void start(struct ccci_fileq *q)
{
  struct fileq_job *j;

  if (q->flight != NULL || ccci_list_empty(&q->jobs))
    return;
  j = ccci_container_of(ccci_list_first(&q->jobs), struct fileq_job, node);
  ccci_list_remove(&j->node);
  q->flight = j;
  /* uv_queue_work fails only without a work callback. */
  (void)uv_queue_work(q->loop, &j->work, job_work, job_done);
}

static void add_waiter(struct fileq_job *j, ccci_fileq_done done, void *arg)
{
  j->waiters =
      ccci_xrealloc(j->waiters, (j->nwaiters + 1) * sizeof(*j->waiters));
  j->waiters[j->nwaiters].done = done;
  j->waiters[j->nwaiters].arg = arg;
  j->nwaiters++;
}

void ccci_fileq_put(struct ccci_fileq *q, char *path, char *data, size_t len,
                    unsigned flags, ccci_fileq_done done, void *arg)
{
  struct fileq_job *j = NULL;

  if (!ccci_list_empty(&q->jobs))
    j = ccci_container_of(q->jobs.prev, struct fileq_job, node);
  if (j != NULL && j->flags == flags && strcmp(j->path, path) == 0) {
    free(path);
    free(j->data);
    j->data = data;
    j->len = len;
    add_waiter(j, done, arg);
    return;
  }
  j = ccci_xcalloc(1, sizeof(*j));
  j->q = q;
  j->path = path;
  j->data = data;
  j->len = len;
  j->flags = flags;
  add_waiter(j, done, arg);
  ccci_list_add_tail(&q->jobs, &j->node);
  start(q);
}
