const { greet } = require('@poly/greet');
const { format } = require('@poly/format');

console.log(format(greet('api')));
