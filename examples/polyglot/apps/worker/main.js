const { format } = require('@poly/format');

console.log(format('worker ready'));
