// Newest answers only. A page that loads again when its filter or page
// changes can have two requests in flight; the older one's answer may
// arrive last and must not replace what the newer one showed (a list
// filtered by owner swapped back to everyone's, and "Verify these"
// checking the wrong executions). begin() starts a request; the function
// it returns says, once the answer is in, whether no request began since.
export function newestOnly(): { begin(): () => boolean } {
  let latest = 0;
  return {
    begin() {
      const mine = ++latest;
      return () => mine === latest;
    },
  };
}
