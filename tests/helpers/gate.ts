/** Holds work until the test lets it go: the code under test awaits `held`, the test calls release(). */
export function gate(): { held: Promise<void>; release(): void } {
  let release = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  return { held, release }
}
