exports.format = (text) => `[format v1] ${text}`;
