/**
 * How much of a session a task is shown (forge run … --session <id>). Recent exchanges come whole,
 * with each call's input and output, so "that list" can mean an earlier tool output; older ones are
 * one line each, summarised without a model call; the oldest are only counted. Every character here
 * is input tokens on every turn of the task.
 */
export const session = {
  /** the last this many exchanges: task, answer, and each call's input and output */
  recent: 4,
  /** before those, this many as one line each (task → answer) */
  summarised: 20,
  /** characters kept of each call's input and of its output (JSON) */
  callChars: 1500,
  /** characters kept of a recent exchange's answer */
  answerChars: 2000,
  /** characters kept of the task and of the answer in a summary line */
  lineChars: 160,
};
