// A list's `total` is a count under the filters, and a filter no index serves (a rule, a score, a revoke
// status) reads every row of the table for it: 100,000 correlations and `?rule=` that matches none held the
// main thread 0.76 s, half of it for the count of a first page that had already read every row. A first
// page with no next page holds every item under the filters, so its size is the total and nothing is
// counted again.
import { describe, expect, it } from 'vitest'
import type { ListQuery } from '../../../runtime/list-query.ts'
import { pageOf } from '../../../runtime/read-route.ts'

const items = Array.from({ length: 10 }, (_, n) => ({ time: 100 - n, id: `i${n}` }))
const fetch = (q: ListQuery) => items.slice(0, q.limit)
const keyOf = (i: { time: number; id: string }) => i

describe('a page of a list', () => {
  it('takes the total from a first page that has no next page, without counting', () => {
    let counted = 0
    const page = pageOf({ limit: 50, text: {} }, fetch, () => ++counted && 10, keyOf)
    expect(page).toMatchObject({ count: 10, total: 10 })
    expect(page.next).toBeUndefined()
    expect(counted).toBe(0)
  })

  it('counts when the page is full or follows a cursor', () => {
    let counted = 0
    const count = () => {
      counted++
      return 10
    }
    const full = pageOf({ limit: 4, text: {} }, fetch, count, keyOf)
    expect(full).toMatchObject({ count: 4, total: 10 })
    expect(full.next).toBeDefined()
    const later = pageOf({ limit: 50, text: {}, cursor: { time: 101, id: 'z' } }, fetch, count, keyOf)
    expect(later).toMatchObject({ count: 10, total: 10 })
    expect(counted).toBe(2)
  })
})
