/* A small intrusive doubly-linked list: a node embedded in its owner, a
 * head that is a node of its own (circular, so insert and remove never
 * branch on the ends). The owner comes back with ccci_container_of. */
#ifndef CCCI_LIST_H
#define CCCI_LIST_H

#include <stdbool.h>
#include <stddef.h>

/** A node, or a list's head. A zeroed node is "not in a list". */
struct ccci_list {
  struct ccci_list *prev, *next;
};

/** Make @p head an empty list. */
static inline void ccci_list_init(struct ccci_list *head)
{
  head->prev = head;
  head->next = head;
}

/** Whether the list of @p head is empty. */
static inline bool ccci_list_empty(const struct ccci_list *head)
{
  return head->next == head;
}

/** Add @p node at the end of the list of @p head. */
static inline void ccci_list_add_tail(struct ccci_list *head,
                                      struct ccci_list *node)
{
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}

/** Add @p node at the front of the list of @p head. */
static inline void ccci_list_add_head(struct ccci_list *head,
                                      struct ccci_list *node)
{
  ccci_list_add_tail(head->next, node);
}

/** Take @p node out of its list; a node in none is left as it is. */
static inline void ccci_list_remove(struct ccci_list *node)
{
  if (node->next == NULL)
    return;
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = NULL;
  node->next = NULL;
}

/** The first node of the list of @p head, or NULL when it is empty. */
static inline struct ccci_list *ccci_list_first(const struct ccci_list *head)
{
  return head->next == head ? NULL : head->next;
}

/**
 * Walk the list of @p head with @p it, which the body may remove (and free)
 * since the next node is taken first (@p nx).
 */
#define ccci_list_foreach_safe(it, nx, head)                                   \
  for ((it) = (head)->next, (nx) = (it)->next; (it) != (head);                 \
       (it) = (nx), (nx) = (it)->next)

#endif
