/** A stand-in for `nextTurn` that counts the turns a piece of code gives the event loop. */
export function countingPause() {
  let turns = 0
  return {
    pause: async () => {
      turns++
    },
    turns: () => turns,
  }
}
