exports.greet = (name) => `hello from ${name} via greet`;
