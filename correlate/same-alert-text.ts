// Falco alerts of one loop differ only in their leading timestamp: what makes two the same alert.
/**
 * Where the text after Falco's leading `%evt.time` begins ("2024-05-07T18:54:19.341081180+0000: " or
 * "18:54:19.341081180: "), 0 when the output starts otherwise: alerts of a loop differ only there.
 */
const afterFalcoTime = (output: string): number => {
  const colon = output.indexOf(': ')
  if (colon < 8 || colon > 40) return 0
  for (let i = 0; i < colon; i++) {
    const ch = output.charCodeAt(i)
    // digits, ':', '.', '-', '+', 'T'
    if (!((ch >= 48 && ch <= 58) || ch === 46 || ch === 45 || ch === 43 || ch === 84)) return 0
  }
  return colon + 2
}

/** Same Falco output but for its leading timestamp. */
export const sameAlertText = (a: string, b: string): boolean => {
  const i = afterFalcoTime(a)
  const j = afterFalcoTime(b)
  return a.length - i === b.length - j && a.endsWith(b.slice(j))
}
