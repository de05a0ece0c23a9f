// Spectral custom function: the parameter name, without a trailing "[]", must be a plural
// (ends in "s"; the last word of a snake_case name is the one that counts).
export default (name) => {
  if (typeof name !== "string") return [];
  const bare = name.replace(/\[\]$/, "");
  const last = bare.split("_").pop();
  if (last.endsWith("s") && !last.endsWith("ss")) return [];
  return [{ message: `${name} should name a plural (e.g. ${bare}s[])` }];
};
